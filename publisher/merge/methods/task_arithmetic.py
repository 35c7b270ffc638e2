"""Task arithmetic and the family built on it: TIES, DARE, breadcrumbs, DELLA.

Each fine-tune contributes a task vector (its tensor minus the base's), optionally
sparsified (publisher.merge.sparsify), weighted, optionally filtered by a sign consensus
(TIES: keep the elements whose sign agrees with the sign of the weighted sum), summed,
optionally divided by the weights that survived (``normalize``), scaled by ``lambda`` and
added back to the base. Like mergekit 0.1.5, everything runs in the load dtype (bf16 for a
``dtype: bfloat16`` recipe); ``compute_dtype: float32`` in the recipe makes it float32.

Sparsification needs the whole tensor (top-k, L1 norms); everything after it is
elementwise across models, so it runs in row bands to keep temporaries small on 7B-width
tensors. TIES' election and top-k are per tensor, never over the whole model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from publisher.lazy import torch
from publisher.merge import sparsify as sp
from publisher.merge.methods.common import aligned, row_bands
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    Problem,
    TensorJob,
    in_range,
    is_bool,
    is_number,
    non_negative,
    register,
    zero_weight_sum,
)

# (delta, that model's params, job, model index) -> sparsified delta (same dtype and shape;
# it may modify the delta in place and return it)
Sparsifier = Callable[["torch.Tensor", dict[str, Any], TensorJob, int], "torch.Tensor"]
Consensus = Literal["sum", "count"] | None


def consensus_mask(weighted: torch.Tensor, method: Literal["sum", "count"], mask_dtype: torch.dtype) -> torch.Tensor:
    """TIES sign election over dim 0 (the models): True where a model's sign is the elected one."""
    sign = weighted.sign().to(mask_dtype)
    if method == "sum":
        elected = (weighted.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    else:
        elected = (sign.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    return sign == elected


def generalized_task_arithmetic(job: TensorJob, *, sparsify: Sparsifier | None, consensus: Consensus) -> torch.Tensor:
    assert job.base is not None
    tensors = aligned(job)
    base = tensors[job.base]
    others = [i for i in range(len(tensors)) if i != job.base]
    if not others:
        return base
    deltas = base.new_empty((len(others), *base.shape))
    for k, i in enumerate(others):
        row = deltas[k]
        torch.sub(tensors[i], base, out=row)
        if sparsify is not None:
            sparse = sparsify(row, job.model_params[i], job, i)
            if sparse.data_ptr() != row.data_ptr():  # in-place sparsifiers return ``row``
                row.copy_(sparse)
            del sparse
    weights = torch.tensor([float(job.model_params[i]["weight"]) for i in others], dtype=deltas.dtype)
    weights = weights.reshape((-1,) + (1,) * base.dim())
    normalize = bool(job.params["normalize"])
    lam = float(job.params["lambda"])
    mask_dtype = torch.int8 if job.params.get("int8_mask") else base.dtype
    out = torch.empty_like(base)
    for band in row_bands(base):
        d = deltas[:, band] if base.dim() else deltas
        d.mul_(weights)
        if consensus is not None:
            mask = consensus_mask(d, consensus, mask_dtype)
            mixed = (d * mask).sum(dim=0)
            if normalize:  # the weights that survived the election, per element
                divisor = (weights * mask).sum(dim=0)
                divisor[divisor == 0] = 1
                mixed /= divisor
            del mask
        else:
            mixed = d.sum(dim=0)
            if normalize:
                divisor = weights.sum(dim=0)
                divisor[divisor.abs() < 1e-8] = 1
                mixed /= divisor
        if lam != 1:
            mixed *= lam
        b = base[band] if base.dim() else base
        res = (b + mixed).to(base.dtype)
        if base.dim():
            out[band] = res
        else:
            out = res
    return out


# -- sparsifiers ---------------------------------------------------------------------------


def _magnitude(delta: torch.Tensor, p: dict[str, Any], job: TensorJob, i: int) -> torch.Tensor:
    return sp.magnitude(delta, float(p["density"]), rescale=bool(job.params["rescale"]))


def _outliers(delta: torch.Tensor, p: dict[str, Any], job: TensorJob, i: int) -> torch.Tensor:
    return sp.magnitude_outliers(delta, float(p["density"]), float(p["gamma"]), rescale=bool(job.params["rescale"]))


def _random(delta: torch.Tensor, p: dict[str, Any], job: TensorJob, i: int) -> torch.Tensor:
    return sp.bernoulli(delta, float(p["density"]), job.stream_seed, f"#model{i}", rescale=bool(job.params["rescale"]))


def _della(delta: torch.Tensor, p: dict[str, Any], job: TensorJob, i: int) -> torch.Tensor:
    return sp.della_magprune(
        delta, float(p["density"]), float(p["epsilon"]), job.stream_seed, f"#model{i}", rescale=bool(job.params["rescale"])
    )


# Working memory as a multiple of the input bytes: the stacked task vectors ((n-1)/n of the
# inputs) plus band temporaries; a magnitude ranking adds a float32 copy and int64 argsort
# indices of one task vector (~6x its bf16 size) while it runs.
RANKING_WORKSPACE = 4.5

# -- parameters and checks ------------------------------------------------------------------


def gta_params(*, normalize: bool, rescale: bool) -> tuple[Param, ...]:
    """The global parameters every generalized-task-arithmetic method takes, with its defaults."""
    return (
        Param("int8_mask", False, is_bool),
        Param("normalize", normalize, is_bool),
        Param("rescale", rescale, is_bool),
        Param("lambda", 1.0, is_number),
    )


def _gta_check(non_base: int, has_base: bool, params: dict[str, Any], model_params: list[dict[str, Any]]) -> Problem | None:
    for p in model_params:
        eps = p.get("epsilon")
        d = p.get("density")
        if eps is not None and d is not None and d < 1 and not (d - eps > 0 and d + eps < 1):
            return Problem(
                "epsilon",
                f"density ± epsilon must stay inside (0, 1), got density {d} and epsilon {eps}",
                "choose epsilon smaller than both density and 1 - density",
            )
    return zero_weight_sum("normalize", params, model_params)


DENSITY = Param("density", 1.0, in_range(0.0, 1.0, lo_open=True))


def _register(
    name: str,
    pretty: str,
    url: str,
    *,
    sparsify: Sparsifier | None,
    consensus: Consensus,
    normalize: bool,
    rescale: bool,
    extra: tuple[Param, ...] = (),
    random: bool = False,
    workspace: float = 0.8,
) -> None:
    def fn(job: TensorJob) -> torch.Tensor:
        return generalized_task_arithmetic(job, sparsify=sparsify, consensus=consensus)

    fn.__name__ = name
    register(
        MergeMethod(
            name=name,
            fn=fn,
            params=gta_params(normalize=normalize, rescale=rescale),
            model_params=(Param("weight", check=is_number), DENSITY, *extra),
            needs_base=True,
            min_models=1,  # the base alone: mergekit returns the base (a LoRA baked into it)
            random=random,
            workspace=workspace,
            pretty_name=pretty,
            reference_url=url,
            check=_gta_check,
        )
    )


def task_arithmetic(job: TensorJob) -> torch.Tensor:
    return generalized_task_arithmetic(job, sparsify=None, consensus=None)


TIES_URL = "https://arxiv.org/abs/2306.01708"
DARE_URL = "https://arxiv.org/abs/2311.03099"
BREADCRUMBS_URL = "https://arxiv.org/abs/2312.06795"
DELLA_URL = "https://arxiv.org/abs/2406.11617"
GAMMA = Param("gamma", 0.01, non_negative)
EPSILON = Param("epsilon", 0.15, non_negative)

_register("task_arithmetic", "Task Arithmetic", "https://arxiv.org/abs/2212.04089", sparsify=None, consensus=None, normalize=False, rescale=False)
_register("ties", "TIES", TIES_URL, sparsify=_magnitude, consensus="sum", normalize=True, rescale=False, workspace=RANKING_WORKSPACE)
_register("dare_ties", "DARE TIES", DARE_URL, sparsify=_random, consensus="sum", normalize=False, rescale=True, random=True)
_register("dare_linear", "Linear DARE", DARE_URL, sparsify=_random, consensus=None, normalize=False, rescale=True, random=True)
_register("breadcrumbs", "Model Breadcrumbs", BREADCRUMBS_URL, sparsify=_outliers, consensus=None, normalize=False, rescale=False, extra=(GAMMA,), workspace=RANKING_WORKSPACE)
_register(
    "breadcrumbs_ties", "Model Breadcrumbs with TIES", BREADCRUMBS_URL, sparsify=_outliers, consensus="sum", normalize=False, rescale=False, extra=(GAMMA,), workspace=RANKING_WORKSPACE
)
_register("della", "DELLA", DELLA_URL, sparsify=_della, consensus="sum", normalize=True, rescale=True, extra=(EPSILON,), random=True)
_register("della_linear", "Linear DELLA", DELLA_URL, sparsify=_della, consensus=None, normalize=False, rescale=True, extra=(EPSILON,), random=True)
