"""The ``quantization_config`` block of an FP8 variant's config.json.

Same keys and values as llm-compressor 0.14.0.1 writes for its FP8_DYNAMIC / FP8_BLOCK
presets (checked against tests/fixtures/fp8). ``version`` is the compressed-tensors
version that writer pins, 0.19.0: it names the format revision, and compressed-tensors 0.20
(what transformers 5.23 users have) and vLLM read it unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from publisher.quantize.schemes import FORMAT, Scheme, get_scheme

COMPRESSED_TENSORS_VERSION = "0.19.0"


def quantization_config(scheme: str | Scheme, ignore: Sequence[str]) -> dict[str, Any]:
    """The block itself; ``ignore`` is the expanded list of Linear modules left unquantized."""
    s = get_scheme(scheme)
    return {
        "config_groups": {"group_0": s.config_group()},
        "format": FORMAT,
        "global_compression_ratio": None,
        "ignore": list(ignore),
        "kv_cache_scheme": None,
        "quant_method": "compressed-tensors",
        "quantization_status": "compressed",
        "sparsity_config": {},
        "transform_config": {},
        "version": COMPRESSED_TENSORS_VERSION,
    }


def variant_config(config: Mapping[str, Any], scheme: str | Scheme, ignore: Sequence[str]) -> dict[str, Any]:
    """The source (merged) model's config with the quantization block added; nothing else changes."""
    out = copy.deepcopy(dict(config))
    out["quantization_config"] = quantization_config(scheme, ignore)
    return out


def config_bytes(config: Mapping[str, Any]) -> bytes:
    """config.json text: sorted keys and indent 2 like llm-compressor, plus the final newline."""
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
