"""FP8 as vLLM computes it, simulated in float32 on any device.

vLLM's W8A8-FP8 path for compressed-tensors checkpoints multiplies FP8 weights and FP8
activations and rescales in float32: ``y = (x_q @ w_q.T) * s_x * s_w``. That equals a float32
matmul of the dequantized operands, up to summation order, so the simulation dequantizes
each weight once (``w = q * scale``, per output channel or per 128×128 block) and
quantize-dequantizes each Linear's input at run time:

- fp8-dynamic: one scale per token, ``s = max(absmax / 448, 1 / (448·512))`` (vLLM's
  ``dynamic_per_token_scaled_fp8_quant`` floor), ``x_q = fp8(clamp(x / s))``;
- fp8-block: one scale per token and 128-column group, ``s = max(absmax, 1e-10) / 448``
  (``per_token_group_quant_fp8``);
- static per-tensor activations (an ``input_scale`` tensor): that scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from publisher.lazy import torch

FP8_MAX = 448.0
MIN_TOKEN_SCALE = 1.0 / (FP8_MAX * 512.0)
GROUP_EPS = 1e-10


@dataclass(frozen=True)
class ScaleLayout:
    """What a compressed-tensors FP8 ``quantization_config`` says about weights and activations."""

    strategy: str  # weights: "channel", "block" or "tensor"
    block: tuple[int, int] | None
    activation: str | None  # "token", "group", "tensor" or None (weight-only)
    activation_dynamic: bool
    group_size: int | None
    ignore: tuple[str, ...]

    @property
    def scheme(self) -> str:
        if self.strategy == "block":
            return "fp8-block"
        if self.activation is None:
            return "fp8-weight-only"
        return "fp8-dynamic" if self.activation_dynamic else "fp8-static"

    def scale_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        out_features = shape[0]
        if self.strategy == "channel":
            return (out_features, 1)
        if self.strategy == "block" and self.block is not None:
            return (math.ceil(out_features / self.block[0]), math.ceil(shape[1] / self.block[1]))
        return (1,)


def layout_of(config: dict[str, Any]) -> ScaleLayout:
    """The layout of a compressed-tensors FP8 config; ValueError names what is off."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        raise ValueError("is not an object")
    if qc.get("quant_method") != "compressed-tensors":
        raise ValueError(f"quant_method {qc.get('quant_method')!r} is not compressed-tensors")
    groups = qc.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise ValueError("has no config_groups")
    group = groups[sorted(groups)[0]]
    weights = group.get("weights") if isinstance(group, dict) else None
    if not isinstance(weights, dict):
        raise ValueError("config group has no weights")
    if weights.get("type") != "float" or weights.get("num_bits") != 8:
        raise ValueError(f"weights are {weights.get('type')}{weights.get('num_bits')}, not FP8 (float, 8 bits)")
    strategy = str(weights.get("strategy"))
    if strategy not in ("channel", "block", "tensor"):
        raise ValueError(f"weight strategy {strategy!r} is not channel, block or tensor")
    block = weights.get("block_structure")
    if strategy == "block" and not (isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block)):
        raise ValueError(f"block strategy needs block_structure [rows, cols], found {block!r}")
    acts = group.get("input_activations")
    activation = None
    dynamic = False
    group_size = None
    if isinstance(acts, dict):
        activation = str(acts.get("strategy"))
        dynamic = bool(acts.get("dynamic"))
        group_size = acts.get("group_size")
        if activation == "group" and not (isinstance(group_size, int) and group_size > 0):
            raise ValueError(f"group activations need a group_size, found {group_size!r}")
    ignore = tuple(str(x) for x in qc.get("ignore") or [])
    return ScaleLayout(strategy, tuple(block) if strategy == "block" else None, activation, dynamic, group_size, ignore)  # type: ignore[arg-type]


def dequantize(codes: torch.Tensor, scale: torch.Tensor, layout: ScaleLayout, dtype: torch.dtype) -> torch.Tensor:
    """``q * scale`` in ``dtype`` (float32 for measuring): the weight vLLM's kernels multiply by."""
    values = codes.to(dtype)
    s = scale.to(dtype)
    if layout.strategy == "block" and layout.block is not None:
        br, bc = layout.block
        s = s.repeat_interleave(br, 0).repeat_interleave(bc, 1)[: codes.shape[0], : codes.shape[1]]
    return values.mul_(s)


def _fp8_round(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    q = (x / scale).clamp_(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.to(x.dtype).mul_(scale)


def fake_quant_input(x: torch.Tensor, layout: ScaleLayout, input_scale: torch.Tensor | None = None) -> torch.Tensor:
    """A Linear's input as vLLM's FP8 GEMM sees it: quantized to FP8 with its run-time scales."""
    if layout.activation is None:
        return x
    work = x.float()
    if input_scale is not None and not layout.activation_dynamic:
        out = _fp8_round(work, input_scale.float().reshape(()))
    elif layout.activation == "group":
        size = int(layout.group_size or 128)
        cols = work.shape[-1]
        pad = (-cols) % size
        padded = torch.nn.functional.pad(work, (0, pad)) if pad else work
        grouped = padded.reshape(*padded.shape[:-1], -1, size)
        scale = grouped.abs().amax(dim=-1, keepdim=True).clamp_(min=GROUP_EPS) / FP8_MAX
        out = _fp8_round(grouped, scale).reshape(padded.shape)[..., :cols]
    elif layout.activation == "token":
        scale = (work.abs().amax(dim=-1, keepdim=True) / FP8_MAX).clamp_(min=MIN_TOKEN_SCALE)
        out = _fp8_round(work, scale)
    else:  # dynamic per-tensor
        scale = (work.abs().amax() / FP8_MAX).clamp_(min=MIN_TOKEN_SCALE)
        out = _fp8_round(work, scale)
    return out.to(x.dtype)


def weight_error(weight: torch.Tensor, dequantized: torch.Tensor, layout: ScaleLayout) -> float:
    """Worst ``max|W − q·s| / max|W|`` over scale groups: ≈ 1/16 for a right scale, ≥ 0.5 for a wrong one."""
    w = weight.float()
    diff = (w - dequantized.float()).abs()
    if layout.strategy == "channel":
        ref = w.abs().amax(dim=1)
        err = diff.amax(dim=1)
    elif layout.strategy == "block" and layout.block is not None:
        br, bc = layout.block
        rows, cols = w.shape
        nr, nc = -(-rows // br), -(-cols // bc)
        pad = (0, nc * bc - cols, 0, nr * br - rows)
        ref = torch.nn.functional.pad(w.abs(), pad).view(nr, br, nc, bc).amax(dim=(1, 3))
        err = torch.nn.functional.pad(diff, pad).view(nr, br, nc, bc).amax(dim=(1, 3))
    else:
        ref = w.abs().amax().reshape(1)
        err = diff.amax().reshape(1)
    nonzero = ref > 0
    if not bool(nonzero.any()):
        return float(err.max()) if err.numel() else 0.0
    return float((err[nonzero] / ref[nonzero]).max())
