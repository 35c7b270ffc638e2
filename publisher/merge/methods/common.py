"""Small helpers shared by methods: precision, row bands, common submatrices."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from publisher.merge.methods.registry import TensorJob

BAND_ELEMENTS = 1 << 22  # ~16 MB of float32 temporaries per band


def work_dtype(job: TensorJob, mergekit_dtype: torch.dtype) -> torch.dtype:
    """float32 when the recipe asks for it, else the precision mergekit uses for this method."""
    return job.compute_dtype or mergekit_dtype


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


def common_submatrix(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """For embeddings of different vocab sizes: the largest common top-left submatrix (as mergekit)."""
    if not all(t.dim() == 2 for t in tensors):
        return tensors
    rows = min(t.shape[0] for t in tensors)
    cols = min(t.shape[1] for t in tensors)
    return [t[:rows, :cols] for t in tensors]
