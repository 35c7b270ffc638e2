"""LoRA parents (``org/model+org/lora``): a PEFT adapter applied to its base tensor by tensor.

mergekit merges the adapter into a full copy of the base on disk (PEFT's
``merge_and_unload``) before merging; we never write that copy. The engine reads each base
tensor and, for a LoRA parent, hands it to ``LoraAdapter.apply``, which returns what PEFT's
merge gives for it: ``W + scale · B·A`` (``(B·A)ᵀ`` for embeddings and ``fan_in_fan_out``),
with ``scale = lora_alpha / r`` (``/ √r`` under rsLoRA, per-module ``rank_pattern`` /
``alpha_pattern`` honoured), computed in float32 as PEFT does with its float32 adapter weights
on CPU, and added as PEFT's merge adds it: in float32 for linear layers, cast to the weight's
dtype first for embeddings. A full tensor in the adapter
(``modules_to_save``, a saved ``base_layer``) replaces the base's.

Only safetensors adapters (``adapter_model.safetensors`` + ``adapter_config.json``) are read;
``.bin`` adapters are refused, as every pickle is. DoRA and LoRA biases are refused.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import SourceError
from publisher.lazy import torch
from publisher.tensors import TensorInfo, TensorReader, read_header

ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
PREFIX = "base_model.model."


@dataclass(frozen=True)
class LoraModule:
    """The adapter's tensors for one base tensor."""

    a: TensorInfo | None = None
    b: TensorInfo | None = None
    replace: TensorInfo | None = None  # a full tensor: modules_to_save or a saved base layer
    embedding: bool = False


@dataclass
class LoraAdapter:
    ref: str
    path: Path
    config: dict[str, Any]
    modules: dict[str, LoraModule] = field(default_factory=dict)  # keyed by base tensor name
    revision: str | None = None  # the commit of a Hub adapter
    _reader: TensorReader = field(default_factory=TensorReader, repr=False)  # adapters are always local files

    @property
    def files(self) -> list[Path]:
        return [self.path / ADAPTER_FILE, self.path / ADAPTER_CONFIG]

    def _pattern(self, table: str, module: str, default: float) -> float:
        for key, value in (self.config.get(table) or {}).items():
            if re.fullmatch(rf"(.*\.)?{key}", module):
                return float(value)
        return default

    def scale(self, tensor_name: str) -> float:
        module = tensor_name.removesuffix(".weight")
        r = self._pattern("rank_pattern", module, float(self.config.get("r", 8)))
        alpha = self._pattern("alpha_pattern", module, float(self.config.get("lora_alpha", 8)))
        return alpha / math.sqrt(r) if self.config.get("use_rslora") else alpha / r

    def apply(self, name: str, base: torch.Tensor) -> torch.Tensor:
        """The base tensor ``name`` with the adapter merged in (the base itself if untouched)."""
        reader = self._reader
        mod = self.modules.get(name)
        if mod is None:
            return base
        if mod.replace is not None:
            base = reader.read(mod.replace).to(base.dtype)
        if mod.a is None or mod.b is None:
            return base
        a = reader.read(mod.a).float()
        b = reader.read(mod.b).float()
        delta = b @ a
        if mod.embedding or self.config.get("fan_in_fan_out"):
            delta = delta.T
        delta = delta * self.scale(name)
        if tuple(delta.shape) != tuple(base.shape):
            raise SourceError(
                f"adapter tensors for {name} give {list(delta.shape)}, the base tensor is {list(base.shape)}",
                where=f"{self.ref}: {self.path / ADAPTER_FILE}",
                fix="use the adapter trained on this base model",
            )
        if mod.embedding:  # PEFT's Embedding.merge casts the delta to the weight's dtype first
            return base + delta.to(base.dtype)
        return (base.float() + delta).to(base.dtype)


def _module_of(key: str) -> tuple[str, str] | None:
    """Adapter key -> (base tensor name, role) for the roles PEFT saves."""
    if not key.startswith(PREFIX):
        return None
    rest = key[len(PREFIX) :]
    for suffix, role in (
        (".lora_A.weight", "a"),
        (".lora_B.weight", "b"),
        (".lora_embedding_A", "ea"),
        (".lora_embedding_B", "eb"),
        (".base_layer.weight", "replace"),
    ):
        if rest.endswith(suffix):
            return rest[: -len(suffix)] + ".weight", role
    if ".lora_" in rest:
        return rest, "unknown"
    return rest, "replace"  # modules_to_save: the full tensor under its own name


def open_adapter(ref: str, folder: Path, where: str) -> LoraAdapter:
    """Read and check a PEFT LoRA adapter folder (headers only)."""
    config_path = folder / ADAPTER_CONFIG
    weights = folder / ADAPTER_FILE
    if not weights.is_file():
        if (folder / "adapter_model.bin").is_file():
            raise SourceError(
                f"LoRA {ref} has only a pickle adapter (adapter_model.bin); publisher never unpickles",
                where=where,
                fix="save the adapter with safetensors (PEFT's save_pretrained does by default)",
            )
        raise SourceError(f"LoRA {ref} has no {ADAPTER_FILE}", where=where, fix="reference a PEFT LoRA adapter folder or repo")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SourceError(f"LoRA {ref}: cannot read {ADAPTER_CONFIG} ({e})", where=where) from None
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise SourceError(f"LoRA {ref} is a {config.get('peft_type')} adapter, not LoRA", where=where)
    for flag in ("use_dora", "lora_bias"):
        if config.get(flag):
            raise SourceError(f"LoRA {ref} uses {flag}, which is not supported", where=where, fix="merge the adapter with PEFT first")
    infos, _ = read_header(weights)
    parts: dict[str, dict[str, TensorInfo]] = {}
    for key, info in infos.items():
        found = _module_of(key)
        if found is None or found[1] == "unknown":
            raise SourceError(f"LoRA {ref}: unexpected tensor {key}", where=where, fix="use an adapter saved by PEFT")
        parts.setdefault(found[0], {})[found[1]] = info
    modules = {
        name: LoraModule(
            a=p.get("a") or p.get("ea"),
            b=p.get("b") or p.get("eb"),
            replace=p.get("replace"),
            embedding="ea" in p,
        )
        for name, p in parts.items()
    }
    for name, m in modules.items():
        if (m.a is None) != (m.b is None):
            raise SourceError(f"LoRA {ref}: {name} has only one of lora_A / lora_B", where=where)
    return LoraAdapter(ref=ref, path=folder, config=config, modules=modules)
