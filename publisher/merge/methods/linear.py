"""Linear (model soup): a weighted average of the inputs.

mergekit computes it in the load dtype (``dtype:``), with the weights themselves rounded
to that dtype and the products rounded before the sum; we do the same by default so
published bf16 merges reproduce bit for bit.
"""

from __future__ import annotations

import torch

from publisher.merge.methods.common import common_submatrix, row_bands
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    TensorJob,
    is_bool,
    is_number,
    register,
)


def linear(job: TensorJob) -> torch.Tensor:
    tensors = common_submatrix(job.tensors) if job.is_embed else job.tensors
    dtype = job.compute_dtype or tensors[0].dtype
    weights = torch.tensor([float(p["weight"]) for p in job.model_params], dtype=dtype)
    shape = (-1,) + (1,) * tensors[0].dim()
    w = weights.reshape(shape)
    divisor = weights.sum(dim=0) if job.params["normalize"] else None
    out = torch.empty(tensors[0].shape, dtype=dtype)
    for band in row_bands(out):
        stacked = torch.stack([t[band].to(dtype) for t in tensors])
        res = (w * stacked).sum(dim=0)
        if divisor is not None:
            res = res / divisor
        out[band] = res
    return out


register(
    MergeMethod(
        name="linear",
        fn=linear,
        params=(Param("normalize", True, is_bool),),
        model_params=(Param("weight", check=is_number),),
        min_models=1,
        workspace=0.2,
        pretty_name="Linear",
        reference_url="https://arxiv.org/abs/2203.05482",
    )
)
