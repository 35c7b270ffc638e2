"""Sparsification of one task vector (one tensor of one model): which elements survive.

- ``magnitude`` (TIES): keep the ``density`` fraction of largest magnitudes.
- ``magnitude_outliers`` (breadcrumbs): drop the ``gamma`` fraction of largest magnitudes
  (outliers) and the smallest, keeping ``density``.
- ``random`` (DARE): keep each element with probability ``density``.
- ``della_magprune`` (DELLA): keep with a probability that grows with the element's
  magnitude rank within its row, from ``density - epsilon`` to ``density + epsilon``.

The deterministic ones reproduce mergekit 0.1.5 bit for bit, tie-breaking included (they
rank with the same torch sort over float32 magnitudes). The random ones draw from
generators seeded by (recipe seed, tensor name, model index, fixed chunk number), so the
mask is the same on every machine, for any thread count and tensor order; mergekit draws
from a global RNG instead, so its masks are no target.

``rescale`` matches the L1 norm of the kept elements to the whole vector's (mergekit's
``rescale: true``); for a random mask that factor is about 1/density.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from publisher.merge.methods.common import flat_chunks

# salt -> generator, e.g. TensorJob.generator
GeneratorFor = Callable[[str], torch.Generator]


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


def _l1_factor(tensor: torch.Tensor, masked: torch.Tensor, eps: float = 1e-7) -> float | None:
    """before/after L1 norms, accumulated in float64 over fixed chunks (exact enough, order-free)."""
    flat_t, flat_m = tensor.reshape(-1), masked.reshape(-1)
    before = after = 0.0
    for _, c in flat_chunks(flat_t.numel()):
        before += float(flat_t[c].abs().sum(dtype=torch.float64))
        after += float(flat_m[c].abs().sum(dtype=torch.float64))
    if before < eps or after < eps:
        return None
    return before / after


def random_mask(shape: torch.Size, density: float, generator_for: GeneratorFor, salt: str) -> torch.Tensor:
    """A boolean mask keeping each element with probability ``density``; chunk i uses its own generator."""
    numel = 1
    for d in shape:
        numel *= d
    mask = torch.empty(numel, dtype=torch.bool)
    for i, c in flat_chunks(numel):
        gen = generator_for(f"{salt}#{i}")
        mask[c] = torch.rand(c.stop - c.start, generator=gen) < density
    return mask.reshape(shape)


def bernoulli(
    tensor: torch.Tensor, density: float, generator_for: GeneratorFor, salt: str, *, rescale: bool = False
) -> torch.Tensor:
    """DARE: drop each element with probability 1 - density, then (optionally) restore the L1 norm."""
    if density >= 1:
        return tensor
    if density <= 0:
        return torch.zeros_like(tensor)
    masked = tensor * random_mask(tensor.shape, density, generator_for, salt)
    if rescale:
        factor = _l1_factor(tensor, masked)
        if factor is not None:
            masked.mul_(factor)
    return masked


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
    generator_for: GeneratorFor,
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
        gen = generator_for(f"{salt}#della{band_i}")
        keep = torch.rand(probs.shape, generator=gen) < probs
        masked[r : r + step] = band * keep
        del probs, keep
    masked = masked.reshape(tensor.shape)
    if rescale:
        factor = _l1_factor(tensor, masked)
        if factor is not None:
            masked.mul_(factor)
    return masked
