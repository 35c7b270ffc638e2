"""Sparsification of one task vector (one tensor of one model): which elements survive.

- ``magnitude`` (TIES): keep the ``density`` fraction of largest magnitudes.
- ``magnitude_outliers`` (breadcrumbs): drop the ``gamma`` fraction of largest magnitudes
  (outliers) and the smallest, keeping ``density``.
- ``random`` (DARE): keep each element with probability ``density``.
- ``della_magprune`` (DELLA): keep with a probability that grows with the element's
  magnitude rank within its row, from ``density - epsilon`` to ``density + epsilon``.

The deterministic ones reproduce mergekit 0.1.5 bit for bit, tie-breaking included (they
rank with the same torch sort over float32 magnitudes). The random ones draw from PCG64
streams seeded by (recipe seed, tensor name, model index, fixed chunk number), so the mask
is the same on every machine, for any thread count and tensor order; mergekit draws from a
global RNG instead, so its masks are no target. (PCG64's raw output, not torch's mt19937:
it is several times faster, and DARE draws one number per parameter of every fine-tune.)

``rescale`` matches the L1 norm of the kept elements to the whole vector's (mergekit's
``rescale: true``); for a random mask that factor is about 1/density.
"""

from __future__ import annotations

from collections.abc import Callable

from publisher.lazy import numpy as np
from publisher.lazy import torch
from publisher.merge.methods.common import flat_chunks

# salt -> 63-bit seed, e.g. TensorJob.stream_seed
SeedFor = Callable[[str], int]
RESCALE_EPS = 1e-7


def rescale_l1(tensor: torch.Tensor, masked: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """mergekit's L1 rescale, in the tensor's own dtype (the sums too)."""
    before = tensor.abs().sum()
    after = masked.abs().sum()
    if before < eps or after < eps:
        return masked
    return masked * (before / after)


def _apply(tensor: torch.Tensor, mask: torch.Tensor, rescale: bool) -> torch.Tensor:
    masked = tensor * mask
    return rescale_l1(tensor, masked) if rescale else masked


def magnitude(tensor: torch.Tensor, density: float, *, rescale: bool = False) -> torch.Tensor:
    """Keep the top ``density`` fraction by magnitude (at least one element)."""
    if density >= 1:
        return tensor
    if density <= 0 or tensor.numel() == 0:
        return torch.zeros_like(tensor)
    k = max(1, int(density * tensor.numel()))
    order = torch.argsort(tensor.abs().reshape(-1).float(), descending=True)
    mask = torch.zeros(tensor.numel(), dtype=tensor.dtype)
    mask[order[:k]] = 1
    del order
    return _apply(tensor, mask.reshape(tensor.shape), rescale)


def magnitude_outliers(tensor: torch.Tensor, density: float, gamma: float, *, rescale: bool = False) -> torch.Tensor:
    """Drop the largest ``gamma`` fraction and the smallest, keeping ``density`` (breadcrumbs)."""
    if density >= 1:
        return tensor
    n = tensor.numel()
    keep = int(density * n)
    top = int(gamma * n)
    bottom = max(0, n - keep - top)  # fewer outliers dropped when density needs them
    order = torch.sort(tensor.abs().reshape(-1).float(), descending=False).indices
    mask = torch.zeros(n, dtype=tensor.dtype)
    mask[order[bottom : bottom + keep]] = 1
    del order
    return _apply(tensor, mask.reshape(tensor.shape), rescale)


def uniform_bits(count: int, seed: int) -> np.ndarray:
    """``count`` uniform 32-bit words from a PCG64 stream (numpy's bit stream is stable across
    versions and platforms; we read its raw 64-bit output, two words per draw)."""
    raw = np.random.PCG64(seed).random_raw((count + 1) // 2)
    return raw.view(np.uint32)[:count]


def keep_mask(count: int, density: float, seed: int) -> torch.Tensor:
    """A boolean mask keeping each element with probability ``density`` (to 2^-32)."""
    threshold = min(round(density * 2.0**32), 2**32)
    return torch.from_numpy(uniform_bits(count, seed) < np.uint64(threshold))


def random_mask(shape: torch.Size, density: float, seed_for: SeedFor, salt: str) -> torch.Tensor:
    """The DARE mask of a whole tensor; flat chunk i is drawn from its own stream."""
    numel = 1
    for d in shape:
        numel *= d
    mask = torch.empty(numel, dtype=torch.bool)
    for i, c in flat_chunks(numel):
        mask[c] = keep_mask(c.stop - c.start, density, seed_for(f"{salt}#{i}"))
    return mask.reshape(shape)


_INT_VIEW = {2: "int16", 4: "int32", 8: "int64"}  # element size -> torch integer dtype


def bernoulli(tensor: torch.Tensor, density: float, seed_for: SeedFor, salt: str, *, rescale: bool = False) -> torch.Tensor:
    """DARE, in place: drop each element with probability 1 - density, then (optionally)
    restore the L1 norm. Returns ``tensor`` (contiguous), modified.

    One pass over fixed chunks: draw, mask (a bitwise AND on the integer view: dropped
    elements become +0) and accumulate both L1 norms (float32 per chunk, float64 across
    chunks), so temporaries stay at one chunk and no full-size buffer is allocated.
    """
    if density >= 1:
        return tensor
    if density <= 0:
        return tensor.zero_()
    assert tensor.is_contiguous()
    flat = tensor.view(-1)
    bits = flat.view(getattr(torch, _INT_VIEW[flat.element_size()]))
    before = after = 0.0
    for i, c in flat_chunks(flat.numel()):
        keep = keep_mask(c.stop - c.start, density, seed_for(f"{salt}#{i}"))
        if rescale:
            before += float(flat[c].abs().sum(dtype=torch.float32))
        torch.bitwise_and(bits[c], keep.to(bits.dtype).neg_(), out=bits[c])
        if rescale:
            after += float(flat[c].abs().sum(dtype=torch.float32))
    if rescale and before >= RESCALE_EPS and after >= RESCALE_EPS:
        tensor.mul_(before / after)
    return tensor


def della_probabilities(row_abs: torch.Tensor, density: float, epsilon: float) -> torch.Tensor:
    """Keep-probabilities for rows of magnitudes: linear in the magnitude rank within the row."""
    cols = row_abs.shape[1]
    ranks = torch.argsort(torch.argsort(row_abs, dim=1, stable=True), dim=1, stable=True).to(torch.float32)
    norm = ranks / (cols - 1) if cols > 1 else torch.full_like(ranks, 0.5)
    return (density - epsilon) + norm * (2 * epsilon)


def della_magprune(
    tensor: torch.Tensor,
    density: float,
    epsilon: float,
    seed_for: SeedFor,
    salt: str,
    *,
    rescale: bool = False,
) -> torch.Tensor:
    """DELLA's MagPrune: rank-dependent random drop, row by row (a 1-D tensor is one row)."""
    if density >= 1:
        return tensor
    if density <= 0:
        return torch.zeros_like(tensor)
    rows = tensor.reshape(1, -1) if tensor.dim() < 2 else tensor.reshape(tensor.shape[0], -1)
    masked = torch.empty_like(rows)
    # Bands of whole rows: a row's ranks depend only on that row, so banding changes nothing.
    cols = rows.shape[1]
    step = max(1, (1 << 22) // max(cols, 1))
    for band_i, r in enumerate(range(0, rows.shape[0], step)):
        band = rows[r : r + step]
        probs = della_probabilities(band.abs().float(), density, epsilon)
        bits = uniform_bits(probs.numel(), seed_for(f"{salt}#della{band_i}"))
        uniform = torch.from_numpy((bits >> np.uint32(8)).astype(np.float32)).mul_(2.0**-24)
        keep = uniform.reshape(probs.shape) < probs
        masked[r : r + step] = band * keep
        del probs, keep
    masked = masked.reshape(tensor.shape)
    if rescale:
        before = float(tensor.abs().sum(dtype=torch.float64))
        after = float(masked.abs().sum(dtype=torch.float64))
        if before >= RESCALE_EPS and after >= RESCALE_EPS:
            masked.mul_(before / after)
    return masked
