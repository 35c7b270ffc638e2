"""Where the measured pass gets a model's tensor bytes: its safetensors files, or elsewhere.

A build folder normally holds its weights, read by ``pread`` (``TensorReader``). A streaming
build's shards are header-only stubs by the time it is checked (each was uploaded and freed as
it was written), so its measured pass is given other readers: the tensors computed again from
the parents (check/recompute.py) and the parents' own tensors by Range requests. The stubs'
headers still say what each tensor is (name, dtype, shape), so only the bytes change hands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from publisher.lazy import torch
from publisher.tensors import TensorInfo, TensorReader


class TensorReads(Protocol):
    def read(self, info: TensorInfo, rows: tuple[int, int] | None = None) -> torch.Tensor:
        """The tensor (or a band of its first dimension) as a CPU tensor of its dtype and shape."""

    def close(self) -> None: ...


ReadsFor = Callable[[Path], TensorReads]  # a model folder -> the reader of its tensors' bytes


def file_reads() -> TensorReads:
    """The default: the bytes are in the folder's safetensors files."""
    return TensorReader()
