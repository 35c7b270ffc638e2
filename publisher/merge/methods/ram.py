"""RAM (Reinforced Agent Merging): an element changed by one fine-tune only (|delta| >
epsilon) keeps that change whole; one changed by several gets their average. RAM+ (the
tensor-local variant) also boosts each model's unique changes by 1 + r * min(rho, alpha),
rho = its shared / unique change counts.

mergekit 0.1.5 runs RAM in the load dtype; RAM+'s boost is float32, so its result is
float32 for bf16 inputs (that is what mergekit writes, unless out_dtype says otherwise).
"""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.common import split_base
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    TensorJob,
    non_negative,
    promote_f32,
    register,
)


def _vectors(job: TensorJob) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    base, _, tensors = split_base(job)
    assert base is not None
    if not tensors:
        return None
    eps = float(job.params["epsilon"])
    flat = torch.stack([t - base for t in tensors], dim=0).view(len(tensors), -1)
    changed = flat.abs() > eps
    counts = changed.sum(dim=0, keepdim=True)
    return base, flat, changed, counts, counts > 1, counts == 1


def ram(job: TensorJob) -> torch.Tensor:
    v = _vectors(job)
    if v is None:
        return job.tensors[job.base or 0]
    base, flat, changed, counts, shared, unique = v
    z = flat * changed
    merged = ((z * unique) + (z * shared / counts.clamp(min=1))).sum(dim=0, keepdim=True)
    return base + merged.reshape_as(base)


def ramplus_tl(job: TensorJob) -> torch.Tensor:
    v = _vectors(job)
    if v is None:
        return job.tensors[job.base or 0]
    base, flat, changed, counts, shared, unique = v
    eps, r, alpha = float(job.params["epsilon"]), float(job.params["r"]), float(job.params["alpha"])
    n_shared = (changed & shared).sum(dim=1)
    n_unique = (changed & unique).sum(dim=1)
    rho = n_shared / n_unique.clamp(min=eps)
    boost = 1 + r * rho.clamp(min=0, max=alpha)
    z = flat * changed
    merged = ((z * unique * boost.unsqueeze(-1)) + (z * shared / counts.clamp(min=1))).sum(dim=0, keepdim=True)
    return base + merged.reshape_as(base)


URL = "https://arxiv.org/abs/2601.13572"
register(
    MergeMethod(
        name="ram",
        fn=ram,
        params=(Param("epsilon", 1e-5, non_negative),),
        needs_base=True,
        min_models=2,
        workspace=5.0,
        pretty_name="Reinforced Agent Merging",
        reference_url=URL,
    )
)
register(
    MergeMethod(
        name="ramplus_tl",
        fn=ramplus_tl,
        params=(Param("r", 0.1, non_negative), Param("alpha", 0.2, non_negative), Param("epsilon", 1e-5, non_negative)),
        needs_base=True,
        min_models=2,
        workspace=6.0,
        pretty_name="Reinforced Agent Merging Plus (Tensor-Local)",
        reference_url=URL,
        result_dtype=promote_f32,
    )
)
