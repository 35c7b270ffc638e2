"""Passthrough: copy one input tensor (optionally scaled). Frankenmerges are built from slices of it."""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.registry import MergeMethod, Param, TensorJob, is_number, register


def passthrough(job: TensorJob) -> torch.Tensor:
    tensor = job.tensors[0]
    if job.compute_dtype is not None:
        tensor = tensor.to(job.compute_dtype)
    scale = job.model_params[0].get("scale")
    if scale is not None:
        tensor = tensor * scale
    return tensor


def _scale_check(value: object) -> str | None:
    return None if value is None else is_number(value)


register(
    MergeMethod(
        name="passthrough",
        fn=passthrough,
        model_params=(Param("scale", None, _scale_check),),
        min_models=1,
        max_models=1,
        workspace=1.0,
        pretty_name="Passthrough",
    )
)
