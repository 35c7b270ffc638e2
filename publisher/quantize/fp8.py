"""FP8 E4M3 arithmetic that reproduces llm-compressor (CPU torch path) bit for bit.

For a weight ``W`` in the model dtype ``d`` (bf16, fp16 or fp32), per output row (fp8-dynamic)
or per 128×128 block (fp8-block, edge blocks partial):

1. ``absmax`` of the group, exact in ``d``;
2. ``scale = d(absmax / d(448))`` and ``scale = finfo(d).eps`` where that is 0 (zero rows);
3. ``q = d(W / scale)``: a division *in the model dtype* (first rounding, to bf16);
4. ``q = q + 0.0`` (compressed-tensors adds the zero point: −0.0 becomes +0.0);
5. ``clamp(q, −448, 448)`` then cast to float8_e4m3fn (second rounding).

The scale is stored in ``d`` as the dequantisation multiplier (``W ≈ q * scale``). Work is done
in bands of rows (128-row multiples for blocks), so a tensor never needs an fp32 copy and a
band can be quantized without the rest of the tensor: each row's (or block row's) result
depends only on its own values.
"""

from __future__ import annotations

from collections.abc import Iterator

from publisher.errors import QuantizeError
from publisher.lazy import torch
from publisher.quantize.schemes import FP8_MAX, Scheme
from publisher.quantize.targets import check_target_dtype
from publisher.tensors import TORCH_TO_DTYPE

BAND_ELEMENTS = 1 << 21  # ~2M elements per band: 4 MiB of bf16, a few temporaries of that size


def band_rows(shape: tuple[int, ...], scheme: Scheme, band_elements: int | None = None) -> int:
    """Rows per band: whole block rows for block schemes, at least one row otherwise."""
    rows, cols = shape
    n = max(1, (band_elements or BAND_ELEMENTS) // max(cols, 1))
    if scheme.block is not None:
        step = scheme.block[0]
        n = max(step, n - n % step)
    return min(n, max(rows, 1))


def bands(shape: tuple[int, ...], scheme: Scheme, band_elements: int | None = None) -> Iterator[tuple[int, int]]:
    """Row ranges ``[r0, r1)`` covering the tensor, in order."""
    rows = shape[0]
    step = band_rows(shape, scheme, band_elements)
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def scale_rows(scheme: Scheme, r0: int, r1: int) -> tuple[int, int]:
    """The ``weight_scale`` rows produced by weight rows ``[r0, r1)``."""
    if scheme.block is None:
        return r0, r1
    step = scheme.block[0]
    return r0 // step, -(-r1 // step)


def _scales(absmax: torch.Tensor, name: str, row0: int) -> torch.Tensor:
    if not bool(torch.isfinite(absmax).all()):
        bad = int((~torch.isfinite(absmax)).nonzero()[0][0])
        raise QuantizeError(
            f"tensor {name} has NaN or Inf values (first in row {row0 + bad} of its scale groups)",
            where=name,
            fix="fix the source weights; FP8 cannot represent them",
        )
    # Division by a 0-dim tensor of the model dtype, exactly as compressed-tensors computes it.
    scale = absmax / torch.tensor(FP8_MAX, dtype=absmax.dtype)
    return scale.masked_fill_(scale == 0, torch.finfo(absmax.dtype).eps)


def _to_fp8(quotient: torch.Tensor) -> torch.Tensor:
    quotient.add_(0.0)  # the zero-point add: -0.0 -> +0.0, as the reference stores it
    quotient.clamp_(-FP8_MAX, FP8_MAX)
    return quotient.to(torch.float8_e4m3fn)


def quantize_band(band: torch.Tensor, scheme: Scheme, name: str = "weight", row0: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """FP8 codes and scale rows for a band of rows; ``row0`` (a block-row boundary) only names errors."""
    if scheme.block is None:
        absmax = band.abs().amax(dim=1, keepdim=True)
        scale = _scales(absmax, name, row0)
        return _to_fp8(band / scale), scale
    br, bc = scheme.block
    rows, cols = band.shape
    nr, nc = -(-rows // br), -(-cols // bc)
    if rows % br or cols % bc:
        padded = band.new_zeros((nr * br, nc * bc))  # zeros never raise an absmax
        padded[:rows, :cols] = band
    else:
        padded = band
    blocks = padded.view(nr, br, nc, bc)
    absmax = blocks.abs().amax(dim=(1, 3))
    scale = _scales(absmax, name, row0 // br)
    quotient = (blocks / scale.view(nr, 1, nc, 1)).view(nr * br, nc * bc)
    if rows % br or cols % bc:
        quotient = quotient[:rows, :cols].contiguous()
    return _to_fp8(quotient), scale


def quantize_weight(weight: torch.Tensor, scheme: Scheme, name: str = "weight") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole 2-D weight → (float8_e4m3fn codes, scale in the weight's dtype); banded inside."""
    dtype = TORCH_TO_DTYPE.get(weight.dtype, str(weight.dtype))
    check_target_dtype(name, dtype)
    if weight.dim() != 2:
        raise QuantizeError(f"tensor {name} has shape {list(weight.shape)}; FP8 targets are 2-D", where=name)
    weight = weight.contiguous()
    shape = (int(weight.shape[0]), int(weight.shape[1]))
    codes = torch.empty(shape, dtype=torch.float8_e4m3fn)
    scale = torch.empty(scheme.scale_shape(shape), dtype=weight.dtype)
    for r0, r1 in bands(shape, scheme):
        q, s = quantize_band(weight[r0:r1], scheme, name, r0)
        codes[r0:r1] = q
        s0, s1 = scale_rows(scheme, r0, r1)
        scale[s0:s1] = s
    return codes, scale


def dequantize(codes: torch.Tensor, scale: torch.Tensor, scheme: Scheme, dtype: torch.dtype) -> torch.Tensor:
    """``q * scale`` in ``dtype``: what a weight-only consumer sees (used by tests and checks)."""
    values = codes.to(dtype)
    if scheme.block is None:
        return values * scale.to(dtype)
    br, bc = scheme.block
    full = scale.to(dtype).repeat_interleave(br, 0).repeat_interleave(bc, 1)
    return values * full[: codes.shape[0], : codes.shape[1]]
