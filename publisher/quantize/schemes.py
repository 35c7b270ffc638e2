"""The FP8 schemes we write, each pinned to the llm-compressor preset it reproduces bit for bit.

A scheme fixes the weight layout (one scale per output channel, or per 128×128 block) and the
``config_groups`` entry of the compressed-tensors ``quantization_config``. Field values are
those llm-compressor 0.14.0.1 writes (compressed-tensors 0.19.0), measured, see
tests/fixtures/fp8/ and shared/fp8-format.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from publisher.errors import QuantizeError

FP8_MAX = 448.0  # float8_e4m3fn: largest finite value; symmetric range [-448, 448]
FP8_DTYPE = "F8_E4M3"
FORMAT = "float-quantized"


def _args(**overrides: Any) -> dict[str, Any]:
    """A QuantizationArgs dict as compressed-tensors serialises it (every key, nulls included)."""
    args: dict[str, Any] = {
        "actorder": None,
        "block_structure": None,
        "dynamic": False,
        "group_size": None,
        "num_bits": 8,
        "observer": None,
        "observer_kwargs": {},
        "scale_dtype": None,
        "strategy": "tensor",
        "symmetric": True,
        "type": "float",
        "zp_dtype": None,
    }
    args.update(overrides)
    return args


@dataclass(frozen=True)
class Scheme:
    """One FP8 recipe: weight layout plus the activation scheme the consumer applies at run time."""

    name: str  # what a recipe or --scheme says
    llmcompressor_preset: str  # the preset whose output we match bitwise
    suffix: str  # default variant repo suffix: <name>-<suffix>
    summary: str  # one line for cards and --help
    block: tuple[int, int] | None  # None: one scale per output channel
    activation_strategy: str
    activation_group_size: int | None = None

    def scale_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """``weight_scale`` shape for a 2-D weight: [out, 1] or [ceil(out/128), ceil(in/128)]."""
        out_features, in_features = shape
        if self.block is None:
            return (out_features, 1)
        br, bc = self.block
        return (math.ceil(out_features / br), math.ceil(in_features / bc))

    def weight_args(self) -> dict[str, Any]:
        if self.block is None:
            return _args(strategy="channel", observer="memoryless_minmax")
        return _args(strategy="block", block_structure=list(self.block), observer="memoryless_minmax")

    def input_activation_args(self) -> dict[str, Any]:
        return _args(dynamic=True, strategy=self.activation_strategy, group_size=self.activation_group_size)

    def config_group(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "input_activations": self.input_activation_args(),
            "output_activations": None,
            "targets": ["Linear"],
            "weights": self.weight_args(),
        }


FP8_DYNAMIC = Scheme(
    name="fp8-dynamic",
    llmcompressor_preset="FP8_DYNAMIC",
    suffix="FP8",
    summary="FP8 E4M3 weights, one scale per output channel; activations FP8 per token at run time",
    block=None,
    activation_strategy="token",
)
FP8_BLOCK = Scheme(
    name="fp8-block",
    llmcompressor_preset="FP8_BLOCK",
    suffix="FP8-BLOCK",
    summary="FP8 E4M3 weights, one scale per 128x128 block; activations FP8 per 128-group at run time",
    block=(128, 128),
    activation_strategy="group",
    activation_group_size=128,
)

SCHEMES: dict[str, Scheme] = {s.name: s for s in (FP8_DYNAMIC, FP8_BLOCK)}
DEFAULT_SCHEME = FP8_DYNAMIC.name


def get_scheme(scheme: str | Scheme) -> Scheme:
    """The registered scheme for a name (also accepts llm-compressor's preset names)."""
    if isinstance(scheme, Scheme):
        return scheme
    key = scheme.strip()
    found = SCHEMES.get(key.lower()) or next(
        (s for s in SCHEMES.values() if s.llmcompressor_preset == key.upper()), None
    )
    if found is None:
        raise QuantizeError(
            f"unknown quantization scheme {scheme!r}",
            where="scheme",
            fix=f"use one of: {', '.join(SCHEMES)}",
        )
    return found
