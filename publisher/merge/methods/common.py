"""Small helpers shared by methods: aligned inputs, row bands, mergekit's working precision."""

from __future__ import annotations

from collections.abc import Iterator

from publisher.lazy import torch
from publisher.merge.methods.registry import TensorJob

BAND_ELEMENTS = 1 << 22  # ~16 MB of float32 temporaries per band


def float_dtype(dtype: torch.dtype) -> torch.dtype:
    """The precision mergekit's float32 methods work in: float64 stays float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def common_submatrix(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Embeddings of different vocab sizes: the largest common top-left submatrix (the plan's shape)."""
    if not all(t.dim() == 2 for t in tensors) or len({t.shape for t in tensors}) == 1:
        return tensors
    rows = min(t.shape[0] for t in tensors)
    cols = min(t.shape[1] for t in tensors)
    return [t[:rows, :cols] for t in tensors]


def aligned(job: TensorJob) -> list[torch.Tensor]:
    """The inputs, embeddings cut to their common shape (the plan refuses any other mismatch)."""
    return common_submatrix(job.tensors) if job.is_embed else job.tensors


def split_base(job: TensorJob) -> tuple[torch.Tensor | None, list[int], list[torch.Tensor]]:
    """(base tensor or None, indices of the other models, their tensors), inputs aligned."""
    tensors = aligned(job)
    base = tensors[job.base] if job.base is not None else None
    others = [i for i in range(len(tensors)) if i != job.base]
    return base, others, [tensors[i] for i in others]


def row_bands(t: torch.Tensor) -> Iterator[slice]:
    """Row slices of the first dimension, each holding about BAND_ELEMENTS elements."""
    if t.dim() == 0:
        yield slice(None)
        return
    rows = t.shape[0]
    per_row = max(1, t.numel() // max(rows, 1))
    step = max(1, BAND_ELEMENTS // per_row)
    for r in range(0, rows, step):
        yield slice(r, min(rows, r + step))


def flat_chunks(numel: int, size: int = BAND_ELEMENTS) -> Iterator[tuple[int, slice]]:
    """(chunk number, flat slice): a fixed partition, so per-chunk seeds never depend on memory."""
    for i, start in enumerate(range(0, numel, size)):
        yield i, slice(start, min(numel, start + size))
