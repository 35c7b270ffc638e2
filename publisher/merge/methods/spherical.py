"""Spherical merges beyond SLERP: NuSLERP, Multi-SLERP and the Karcher mean.

All in the load dtype, like mergekit 0.1.5 (the Karcher mean takes its norms in float32).
With a base model, NuSLERP and Multi-SLERP interpolate the task vectors and add the base
back; without one they interpolate the weights themselves.
"""

from __future__ import annotations

from typing import Any

from publisher.errors import MergeError
from publisher.lazy import torch
from publisher.merge.methods.common import aligned, float_dtype, split_base
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    Problem,
    TensorJob,
    is_bool,
    is_number,
    non_negative,
    register,
    zero_weight_sum,
)

# -- NuSLERP ---------------------------------------------------------------------------------


def nuslerp_pair(t: float, v0: torch.Tensor, v1: torch.Tensor, *, row_wise: bool, flatten: bool, eps: float = 1e-8) -> torch.Tensor:
    shape = v0.shape
    transpose = not flatten and row_wise
    if flatten:
        v0, v1 = v0.reshape(-1), v1.reshape(-1)
    elif transpose:
        v0, v1 = v0.transpose(0, -1), v1.transpose(0, -1)
    u0 = v0 / torch.norm(v0, dim=-1, keepdim=True).clamp(min=1e-7)
    u1 = v1 / torch.norm(v1, dim=-1, keepdim=True).clamp(min=1e-7)
    cos = torch.sum(u0 * u1, dim=-1, keepdim=True).clamp(-1, 1)
    del u0, u1
    colinear = (1 - cos.square()) <= eps**2
    theta = torch.acos(torch.where(colinear, 0, cos))
    sin_theta = torch.sin(theta)
    res = (torch.sin((1 - t) * theta) * v0 + torch.sin(t * theta) * v1) / sin_theta
    res = torch.where(colinear, (1 - t) * v0 + t * v1, res)
    if transpose:
        res = res.transpose(0, -1)
    return res.reshape(shape)


def nuslerp(job: TensorJob) -> torch.Tensor:
    base, others, tensors = split_base(job)
    if len(tensors) == 1:
        return tensors[0]
    w0, w1 = (float(job.model_params[i]["weight"]) for i in others)
    total = w0 + w1
    t = 0.5 if abs(total) < 1e-6 else w1 / total
    row_wise, flatten = bool(job.params["nuslerp_row_wise"]), bool(job.params["nuslerp_flatten"])
    if base is None:
        return nuslerp_pair(t, tensors[0], tensors[1], row_wise=row_wise, flatten=flatten)
    return base + nuslerp_pair(t, tensors[0] - base, tensors[1] - base, row_wise=row_wise, flatten=flatten)


def _nuslerp_check(non_base: int, has_base: bool, params: dict[str, Any], model_params: list[dict[str, Any]]) -> Problem | None:
    if non_base != 2:
        return Problem(
            "models",
            f"nuslerp merges exactly two models (plus an optional base_model), got {non_base}",
            "list two models; use multislerp for more",
        )
    return None


register(
    MergeMethod(
        name="nuslerp",
        fn=nuslerp,
        params=(Param("nuslerp_row_wise", False, is_bool), Param("nuslerp_flatten", True, is_bool)),
        model_params=(Param("weight", check=is_number),),
        min_models=2,
        max_models=3,
        pretty_name="NuSLERP",
        check=_nuslerp_check,
    )
)

# -- Multi-SLERP -------------------------------------------------------------------------------


def multislerp(job: TensorJob) -> torch.Tensor:
    base, others, tensors = split_base(job)
    if len(tensors) == 1:
        return tensors[0]
    eps = float(job.params["eps"])
    stacked = torch.stack(tensors, dim=0)
    if base is not None:
        stacked -= base
    flat = stacked.view(stacked.shape[0], -1)
    weights = torch.tensor([float(job.model_params[i]["weight"]) for i in others], dtype=stacked.dtype)
    if job.params["normalize_weights"]:
        weights = weights / weights.sum()
    norms = torch.norm(flat, dim=-1, keepdim=True)
    units = flat / (norms + eps)
    mean = (units * weights.view(-1, 1)).sum(0)
    mean_norm = torch.norm(mean)
    if mean_norm < eps:
        if stacked.shape[0] != 2:
            raise MergeError(
                f"tensor {job.name}: the weighted sum of the inputs is zero, so multislerp has no direction",
                fix="change the weights (antipodal inputs with equal weights cancel out)",
            )
        res = (stacked[0] * weights[0] + stacked[1] * weights[1]).view(stacked.shape[1:])
        return res + base if base is not None else res
    mean = mean / mean_norm
    dots = (units * mean).sum(-1, keepdim=True)
    tangents = units - dots * mean
    del units
    tangent = (tangents * weights.view(-1, 1)).sum(0)
    del tangents
    tangent_norm = torch.norm(tangent) + eps
    res = mean * torch.cos(tangent_norm) + tangent * (torch.sin(tangent_norm) / tangent_norm)
    res = res * (norms.squeeze(-1) * weights).sum()
    res = res.view(stacked.shape[1:])
    return res + base if base is not None else res


def _multislerp_check(non_base: int, has_base: bool, params: dict[str, Any], model_params: list[dict[str, Any]]) -> Problem | None:
    return zero_weight_sum("normalize_weights", params, model_params)


register(
    MergeMethod(
        name="multislerp",
        fn=multislerp,
        params=(Param("normalize_weights", True, is_bool), Param("eps", 1e-8, non_negative)),
        model_params=(Param("weight", check=is_number),),
        min_models=1,
        workspace=3.0,
        pretty_name="Multi-SLERP",
        reference_url="https://goddard.blog/posts/multislerp-wow-what-a-cool-idea",
        check=_multislerp_check,
    )
)

# -- Karcher mean ------------------------------------------------------------------------------


def karcher_mean(tensors: list[torch.Tensor], alphas: list[float], max_iter: int, tol: float) -> torch.Tensor:
    """Weighted Riemannian mean of the directions, scaled by the weighted mean norm."""
    if len(tensors) == 1:
        return tensors[0]
    fdt = float_dtype(tensors[0].dtype)
    norms = []
    units = []
    for x in tensors:
        n = torch.linalg.vector_norm(x.to(fdt))
        norms.append(n)
        units.append(torch.zeros_like(x) if n.item() == 0.0 else (x / n).to(x.dtype))
    valid = [i for i, n in enumerate(norms) if n.item() > tol]
    if not valid:
        return torch.zeros_like(tensors[0])
    alpha_sum = sum(alphas[i] for i in valid)
    a_norm = [alphas[i] / alpha_sum for i in valid]
    vunits = [units[i] for i in valid]
    mean = torch.zeros_like(vunits[0])
    for a, u in zip(a_norm, vunits, strict=True):
        mean += a * u
    mean_norm = torch.linalg.vector_norm(mean.to(fdt))
    mean = vunits[0].clone() if mean_norm.item() < tol else (mean / mean_norm).to(mean.dtype)
    for _ in range(max_iter):
        tangent = torch.zeros_like(mean)
        for a, u in zip(a_norm, vunits, strict=True):
            dot = torch.clamp(torch.dot(mean.flatten(), u.flatten()), -1.0, 1.0)
            theta = torch.arccos(dot)
            if theta.item() < tol:
                continue
            tangent += a * (theta / torch.sin(theta)) * (u - dot * mean)
        tn = torch.linalg.vector_norm(tangent.to(fdt))
        if tn.item() < tol:
            break
        mean = (torch.cos(tn) * mean + torch.sin(tn) * (tangent / tn)).to(mean.dtype)
        un = torch.linalg.vector_norm(mean.to(fdt))
        if un.item() > tol:
            mean = (mean / un).to(mean.dtype)
    scale: Any = 0
    for a, n in zip(alphas, norms, strict=True):
        scale = scale + a * n
    return scale * mean


def karcher(job: TensorJob) -> torch.Tensor:
    tensors = aligned(job)  # every input, the base included (mergekit ignores base_model here)
    return karcher_mean(tensors, [1.0 / len(tensors)] * len(tensors), int(job.params["max_iter"]), float(job.params["tol"]))


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1 or int(value) != value:
        return f"must be a whole number of at least 1, got {value!r}"
    return None


register(
    MergeMethod(
        name="karcher",
        fn=karcher,
        params=(Param("max_iter", 10, _positive_int), Param("tol", 1e-5, non_negative)),
        min_models=1,
        pretty_name="Karcher Mean",
        reference_url="https://arxiv.org/abs/2603.04972",
    )
)
