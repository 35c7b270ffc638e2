"""Model Stock: move from the base towards the fine-tunes' average by an amount set by the
angle between their task vectors (t = N cos / (1 + (N - 1) cos), cos averaged over pairs).

In the load dtype, like mergekit 0.1.5; ``filter_wise`` takes one angle per row (filter)
instead of one for the whole tensor. A singular denominator keeps the base.
"""

from __future__ import annotations

from typing import Any

from publisher.lazy import torch
from publisher.merge.methods.common import split_base
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    Problem,
    TensorJob,
    is_bool,
    register,
)


def model_stock(job: TensorJob) -> torch.Tensor:
    base, _, ws = split_base(job)
    assert base is not None
    if not ws:
        return base
    shape = base.shape
    if job.params["filter_wise"]:
        w0 = base.unsqueeze(0) if base.dim() == 1 else base
        ws = [w.unsqueeze(0) for w in ws] if base.dim() == 1 else ws
    else:
        w0 = base.reshape(-1)
        ws = [w.reshape(-1) for w in ws]
    offsets = [w - w0 for w in ws]
    cosines = []
    for i, a in enumerate(offsets):
        for b in offsets[i + 1 :]:
            norms = torch.norm(a, dim=-1) * torch.norm(b, dim=-1)
            cosines.append(((a * b).sum(dim=-1) / norms.clamp(min=1e-6)).clamp(-1, 1))
    del offsets
    cos = torch.stack(cosines).mean(dim=0).unsqueeze(-1)
    n = len(ws)
    denominator = 1 + (n - 1) * cos
    singular = denominator.abs() < 1e-6
    safe = torch.where(singular, torch.ones_like(denominator), denominator)
    t = torch.where(singular, torch.zeros_like(cos), (n * cos) / safe)
    average: Any = 0
    for w in ws:
        average = average + w
    average = average / n
    return (t * average + (1 - t) * w0).reshape(shape)


def _check(non_base: int, has_base: bool, params: dict[str, Any], model_params: list[dict[str, Any]]) -> Problem | None:
    if non_base < 2:
        return Problem("models", f"model_stock needs at least two fine-tunes besides the base, got {non_base}", "add another fine-tune of the base model")
    return None


register(
    MergeMethod(
        name="model_stock",
        fn=model_stock,
        params=(Param("filter_wise", False, is_bool),),
        needs_base=True,
        min_models=3,
        workspace=2.5,
        pretty_name="Model Stock",
        reference_url="https://arxiv.org/abs/2403.19522",
        check=_check,
    )
)
