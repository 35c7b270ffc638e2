"""The consensus stage runs in row bands on big tensors; the bits must equal a whole-tensor run."""

from __future__ import annotations

import torch

from publisher.merge.methods import REGISTRY, TensorJob
from publisher.merge.methods.common import BAND_ELEMENTS


def _whole_tensor_ties(base: torch.Tensor, fts: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    deltas = torch.stack([f - base for f in fts])
    w = torch.tensor(weights, dtype=deltas.dtype).reshape(-1, 1, 1)
    deltas = deltas * w
    sign = deltas.sign()
    elected = (deltas.sum(dim=0) >= 0).to(base.dtype) * 2 - 1
    mask = sign == elected
    mixed = (deltas * mask).sum(dim=0)
    divisor = (w * mask).sum(dim=0)
    divisor[divisor == 0] = 1
    return (base + mixed / divisor).to(base.dtype)


def test_banded_ties_equals_whole_tensor() -> None:
    rows, cols = 4 * BAND_ELEMENTS // 1024 + 37, 1024  # several bands and a ragged last one
    g = torch.Generator().manual_seed(0)
    base = (torch.randn(rows, cols, generator=g) * 0.02).to(torch.bfloat16)
    fts = [(base.float() + torch.randn(rows, cols, generator=g) * 0.004).to(torch.bfloat16) for _ in range(3)]
    weights = [0.5, 0.3, 0.4]
    job = TensorJob(
        name="big",
        tensors=[base, *fts],
        models=["base", "ft1", "ft2", "ft3"],
        base=0,
        params={"int8_mask": False, "normalize": True, "rescale": False, "lambda": 1.0},
        model_params=[{}] + [{"weight": w, "density": 1.0} for w in weights],
    )
    ours = REGISTRY["ties"].fn(job)
    assert torch.equal(ours, _whole_tensor_ties(base, fts, weights))
