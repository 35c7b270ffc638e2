"""Linear (model soup): a weighted average of the inputs.

As mergekit 0.1.5 does: the weights are float32 (float64 for float64 inputs), the products
are accumulated input by input into a float32 buffer with a fused multiply-add, divided by
the sum of the weights when ``normalize``, and cast back to the input dtype.
"""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.common import aligned, float_dtype, row_bands
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    Problem,
    TensorJob,
    is_bool,
    is_number,
    register,
    zero_weight_sum,
)


def linear(job: TensorJob) -> torch.Tensor:
    tensors = aligned(job)
    first = tensors[0]
    dtype = float_dtype(first.dtype)
    weights = torch.tensor([float(p["weight"]) for p in job.model_params], dtype=torch.float32).to(dtype)
    coeffs = [w.reshape((1,) * first.dim()) for w in weights.unbind(0)]
    denominator = weights.sum().reshape((1,) * first.dim()) if job.params["normalize"] else None
    out = torch.empty(first.shape, dtype=first.dtype)
    for band in row_bands(out):
        acc = torch.zeros(out[band].shape, dtype=dtype)
        for t, c in zip(tensors, coeffs, strict=True):
            acc.addcmul_(t[band], c)
        if denominator is not None:
            acc.div_(denominator)
        out[band] = acc
    return out


def _check(non_base: int, has_base: bool, params: dict, model_params: list[dict]) -> Problem | None:
    return zero_weight_sum("normalize", params, model_params)


register(
    MergeMethod(
        name="linear",
        fn=linear,
        params=(Param("normalize", True, is_bool),),
        model_params=(Param("weight", check=is_number),),
        min_models=1,
        pretty_name="Linear",
        reference_url="https://arxiv.org/abs/2203.05482",
        check=_check,
        workspace=0.3,  # one float32 band at a time
    )
)
