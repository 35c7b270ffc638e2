"""SCE: select the elements where the fine-tunes disagree most (variance top-k), weight each
task vector by its mean square, erase minority signs (TIES election), and average.

In the load dtype, like mergekit 0.1.5; the top-k uses the same torch ranking so ties at
the cut resolve the same way.
"""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.common import split_base
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    TensorJob,
    in_range,
    is_bool,
    register,
)
from publisher.merge.methods.task_arithmetic import consensus_mask


def variance_mask(tvs: torch.Tensor, density: float, mask_dtype: torch.dtype) -> torch.Tensor:
    """1 for the ``density`` fraction of elements (of the non-constant ones) with the largest variance."""
    if density <= 0:
        return torch.zeros_like(tvs[0], dtype=mask_dtype)
    if density >= 1:
        return torch.ones_like(tvs[0], dtype=mask_dtype)
    var = torch.var(tvs, dim=0, unbiased=False)
    k = int(torch.count_nonzero(var) * density)
    mask = torch.zeros_like(var, dtype=mask_dtype)
    if k == 0:
        return mask
    top = torch.topk(var.abs().view(-1), k=k, largest=True).indices
    mask.view(-1)[top] = 1
    return mask


def tv_weights(tvs: torch.Tensor) -> torch.Tensor:
    """Each task vector's mean square, normalised to sum to one (uniform if all are ~zero)."""
    w = tvs.square().reshape(tvs.shape[0], -1).mean(dim=1)
    total = torch.sum(w).item()
    if abs(total) < 1e-6:
        return torch.ones_like(w) / w.shape[0]
    return w / total


def sce(job: TensorJob) -> torch.Tensor:
    base, _, tensors = split_base(job)
    assert base is not None
    if not tensors:
        return base
    mask_dtype = torch.int8 if job.params["int8_mask"] else base.dtype
    tvs = torch.stack([t - base for t in tensors], dim=0)
    topk = float(job.params["select_topk"])
    if topk < 1:
        tvs = tvs * variance_mask(tvs, topk, mask_dtype).unsqueeze(0)
    erase = consensus_mask(tvs, "sum", mask_dtype)
    w = tv_weights(tvs)
    while w.dim() < tvs.dim():
        w = w.unsqueeze(-1)
    kept = w * erase
    del erase
    merged = (tvs * kept).sum(dim=0)
    return base + merged / torch.sum(kept, dim=0).clamp(min=1e-6)


register(
    MergeMethod(
        name="sce",
        fn=sce,
        params=(Param("int8_mask", False, is_bool), Param("select_topk", 1.0, in_range(0.0, 1.0, lo_open=True))),
        needs_base=True,
        min_models=2,
        workspace=4.0,
        pretty_name="SCE",
        reference_url="https://arxiv.org/abs/2408.07990",
    )
)
