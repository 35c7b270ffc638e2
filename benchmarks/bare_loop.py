"""The I/O lower bound for a 2-parent merge: read both parents, lerp, write one file.

    python3 benchmarks/bare_loop.py PARENT_A PARENT_B OUT_FILE

No validation, no hashing, no shards, no threads: pread both tensors, 0.5*(a+b) in float32,
write bf16 sequentially. What a merge tool cannot beat by much on the same disk.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publisher.tensors import ModelFiles, TensorReader, tensor_bytes


def main() -> None:
    a, b = ModelFiles.open(Path(sys.argv[1])), ModelFiles.open(Path(sys.argv[2]))
    reader = TensorReader()
    with open(sys.argv[3], "wb") as out:
        for name, info in a.tensors.items():
            x = reader.read(info).float()
            y = reader.read(b.tensors[name]).float()
            out.write(tensor_bytes(x.add_(y).mul_(0.5).to(torch.bfloat16)))
        out.flush()
        os.fsync(out.fileno())


if __name__ == "__main__":
    main()
