"""Task arithmetic and the generalized form that TIES, DARE, breadcrumbs and DELLA share.

Each fine-tune contributes a task vector (its tensor minus the base's). Vectors may be
sparsified (a per-tensor function: magnitude top-k, random drop, ...), optionally filtered
by a sign consensus (TIES), weighted, summed, optionally normalised by the weights that
survived, scaled by ``lambda`` and added back to the base. mergekit does all of this in
the load dtype; so do we unless the recipe asks for float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    TensorJob,
    is_bool,
    is_number,
    register,
)

# (delta, model params, job) -> sparsified delta
Sparsifier = Callable[[torch.Tensor, dict[str, Any], TensorJob, int], torch.Tensor]
Consensus = Literal["sum", "count"] | None


def task_vectors(job: TensorJob, dtype: torch.dtype) -> tuple[list[tuple[int, torch.Tensor]], torch.Tensor]:
    """(model index, delta) for every non-base model, and the base tensor, in ``dtype``.

    Like mergekit: an embedding of another size contributes its common submatrix with the
    base; any other tensor of a different shape is skipped (the plan has already refused
    such recipes unless the tensor is an embedding).
    """
    assert job.base is not None
    base = job.tensors[job.base].to(dtype)
    deltas = []
    for i, t in enumerate(job.tensors):
        if i == job.base:
            continue
        x = t.to(dtype)
        if x.shape != base.shape:
            if not job.is_embed:
                continue
            x = x[: base.shape[0], : base.shape[1]]
        deltas.append((i, x - base))
    return deltas, base


def consensus_mask(weighted: torch.Tensor, method: Literal["sum", "count"], mask_dtype: torch.dtype) -> torch.Tensor:
    """TIES sign election: keep each element whose sign agrees with the elected sign."""
    sign = weighted.sign().to(mask_dtype)
    if method == "sum":
        elected = (weighted.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    else:
        elected = (sign.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    return sign == elected


def generalized_task_arithmetic(
    job: TensorJob, *, sparsify: Sparsifier | None, consensus: Consensus
) -> torch.Tensor:
    dtype = job.compute_dtype or job.tensors[job.base if job.base is not None else 0].dtype
    vectors, base = task_vectors(job, dtype)
    if not vectors:
        return base
    if sparsify is not None:
        vectors = [(i, sparsify(d, job.model_params[i], job, i)) for i, d in vectors]
    deltas = torch.stack([d for _, d in vectors], dim=0)
    weights = torch.tensor([float(job.model_params[i]["weight"]) for i, _ in vectors], dtype=deltas.dtype)
    weights = weights.reshape((-1,) + (1,) * (deltas.dim() - 1))
    weighted = deltas * weights
    del deltas
    if consensus is not None:
        mask_dtype = torch.int8 if job.params.get("int8_mask") else base.dtype
        mask = consensus_mask(weighted, consensus, mask_dtype)
        mixed = (weighted * mask).sum(dim=0)
        divisor = (weights * mask).sum(dim=0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(dim=0)
        divisor = weights.sum(dim=0)
        divisor[divisor.abs() < 1e-8] = 1
    if job.params["normalize"]:
        mixed /= divisor
    lam = float(job.params["lambda"])
    if lam != 1:
        mixed *= lam
    return (base + mixed).to(base.dtype)


def gta_params(*, normalize: bool, rescale: bool) -> tuple[Param, ...]:
    """The global parameters every generalized-task-arithmetic method takes, with its defaults."""
    return (
        Param("int8_mask", False, is_bool),
        Param("normalize", normalize, is_bool),
        Param("rescale", rescale, is_bool),
        Param("lambda", 1.0, is_number),
    )


def task_arithmetic(job: TensorJob) -> torch.Tensor:
    return generalized_task_arithmetic(job, sparsify=None, consensus=None)


register(
    MergeMethod(
        name="task_arithmetic",
        fn=task_arithmetic,
        params=gta_params(normalize=False, rescale=False),
        model_params=(Param("weight", check=is_number), Param("density", 1.0, is_number)),
        needs_base=True,
        min_models=2,
        pretty_name="Task Arithmetic",
        reference_url="https://arxiv.org/abs/2212.04089",
    )
)
