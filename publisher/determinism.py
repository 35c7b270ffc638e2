"""Seeds that depend only on what a value is, never on when it is computed.

A random method (DARE, DELLA) or a stand-in model seeds each tensor from the recipe's seed
and the tensor's name, so the bytes are the same for any thread count, tensor order or
machine. torch's CPU generator (mt19937) is portable, so a seed fixes the stream.
"""

from __future__ import annotations

import hashlib

from publisher.lazy import torch


def tensor_seed(seed: int, name: str) -> int:
    """A 63-bit seed from (recipe seed, tensor name)."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def tensor_generator(seed: int, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(tensor_seed(seed, name))
