"""Which tensors become FP8, and which models we refuse to quantize.

Targets are the Linear weights of the decoder layers: 2-D ``*.weight`` tensors under a
``layers.N.`` prefix that are not norms (q/k/v/o/gate/up/down_proj on Llama/Mistral).
Embeddings, norms, biases and ``lm_head`` keep the source dtype.

Ignore patterns follow compressed-tensors: an entry is matched against the *module* name
(the tensor name without ``.weight``), either exactly (``model.layers.0.mlp.down_proj``)
or, with a ``re:`` prefix, as a regular expression anchored at the start of the name
(Python ``re.match``: ``re:.*layers\\.0\\..*``). The config's ``ignore`` list is the expanded
list of Linear modules left in the source dtype, in model order, as llm-compressor writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from publisher.errors import QuantizeError
from publisher.tensors import PlannedTensor

SOURCE_DTYPES = ("BF16", "F16", "F32")
_LAYER = re.compile(r"(?:^|\.)layers\.\d+\.")
# Tensor names that only exist in checkpoints that are quantized already.
_QUANT_SUFFIXES = (
    ".weight_scale",
    ".weight_scale_inv",
    ".weight_zero_point",
    ".weight_packed",
    ".weight_global_scale",
    ".input_scale",
    ".qweight",
    ".qzeros",
    ".scales",
    ".g_idx",
    ".SCB",
)
# vLLM fuses these projections and requires every shard to share one scheme.
_FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


@dataclass(frozen=True)
class IgnoreRules:
    """Compressed-tensors style ignore entries: exact module names or ``re:`` regexes."""

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], where: str = "quantize.ignore") -> IgnoreRules:
        checked = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise QuantizeError(f"ignore entry {entry!r} is not a module name or re: pattern", where=where)
            if entry.startswith("re:"):
                try:
                    re.compile(entry[3:])
                except re.error as e:
                    raise QuantizeError(
                        f"ignore pattern {entry!r} is not a valid regular expression ({e})",
                        where=where,
                    ) from e
            checked.append(entry)
        return cls(tuple(checked))

    def matches(self, module: str) -> bool:
        for entry in self.entries:
            if entry.startswith("re:"):
                if re.match(entry[3:], module):
                    return True
            elif entry == module:
                return True
        return False


def module_of(tensor_name: str) -> str:
    return tensor_name.removesuffix(".weight")


def is_linear_weight(name: str, shape: Sequence[int]) -> bool:
    """A 2-D weight of a Linear module: not an embedding, not a norm."""
    if not name.endswith(".weight") or len(shape) != 2:
        return False
    leaf = module_of(name).rsplit(".", 1)[-1]
    return "norm" not in leaf and "embed" not in leaf and leaf != "wte" and leaf != "wpe"


def is_decoder_linear(name: str, shape: Sequence[int]) -> bool:
    """A Linear weight inside a decoder layer: what the schemes quantize by default."""
    return is_linear_weight(name, shape) and _LAYER.search(name) is not None


def is_target(name: str, shape: Sequence[int], ignore: IgnoreRules) -> bool:
    return is_decoder_linear(name, shape) and not ignore.matches(module_of(name))


_RANK = {
    "model": 0, "embed_tokens": 0, "layers": 1, "norm": 2, "rotary_emb": 3, "lm_head": 9,
    "self_attn": 0, "mlp": 1, "block_sparse_moe": 1, "input_layernorm": 2, "post_attention_layernorm": 3,
    "q_proj": 0, "k_proj": 1, "v_proj": 2, "o_proj": 3, "gate_proj": 0, "up_proj": 1, "down_proj": 2,
}


def module_order(module: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that follows ``model.named_modules()`` for Llama-style models (layers numerically)."""
    key = []
    for part in module.split("."):
        if part.isdigit():
            key.append((0, int(part), ""))
        else:
            key.append((1, _RANK.get(part, 50), part))
    return tuple(key)


def ignored_modules(tensors: Iterable[PlannedTensor], targets: Iterable[str], config: Mapping[str, object] | None) -> list[str]:
    """The config's ``ignore`` list: every Linear left unquantized, ``lm_head`` included, model order."""
    chosen = set(targets)
    modules = {
        module_of(t.name)
        for t in tensors
        if is_linear_weight(t.name, t.shape) and t.name not in chosen
    }
    # A tied lm_head has no tensor of its own but is still a Linear module of a *ForCausalLM.
    architectures = (config or {}).get("architectures") or []
    if isinstance(architectures, list) and any(str(a).endswith("ForCausalLM") for a in architectures):
        modules.add("lm_head")
    return sorted(modules, key=module_order)


def check_source(tensors: Sequence[PlannedTensor], config: Mapping[str, object] | None, where: str) -> None:
    """Refuse checkpoints that are quantized already: re-quantizing would compound the error."""
    qc = (config or {}).get("quantization_config")
    if isinstance(qc, Mapping):
        method = qc.get("quant_method", "unknown")
        fmt = qc.get("format") or qc.get("fmt") or qc.get("bits")
        detail = f"{method}" + (f", {fmt}" if fmt else "")
        raise QuantizeError(
            f"model is already quantized (config.json quantization_config: {detail})",
            where=where,
            fix="quantize the original bf16/fp16 checkpoint instead",
        )
    for t in tensors:
        if t.dtype.startswith("F8_"):
            raise QuantizeError(
                f"model is already FP8: tensor {t.name} is {t.dtype}",
                where=where,
                fix="quantize the original bf16/fp16 checkpoint instead",
            )
    for t in tensors:
        if t.name.endswith(_QUANT_SUFFIXES) or (t.dtype in ("I8", "U8", "I32") and len(t.shape) == 2):
            raise QuantizeError(
                f"model is already quantized (int/FP8): found tensor {t.name} ({t.dtype})",
                where=where,
                fix="quantize the original bf16/fp16 checkpoint instead",
            )


def check_target_dtype(name: str, dtype: str, where: str | None = None) -> None:
    if dtype not in SOURCE_DTYPES:
        raise QuantizeError(
            f"tensor {name} is {dtype}; FP8 quantization reads {', '.join(SOURCE_DTYPES)} weights",
            where=where,
            fix="convert the checkpoint to bfloat16 first",
        )


def check_fused(targets: Iterable[str], tensors: Iterable[PlannedTensor]) -> None:
    """vLLM loads q/k/v and gate/up as one layer: they must all be FP8 or all be left as they are."""
    chosen = set(targets)
    names = {t.name for t in tensors}
    for name in sorted(names):
        for group in _FUSED:
            first = f".{group[0]}.weight"
            if not name.endswith(first):
                continue
            prefix = name[: -len(first)]
            members = [f"{prefix}.{g}.weight" for g in group]
            present = [m for m in members if m in names]
            quantized = [m for m in present if m in chosen]
            if quantized and len(quantized) != len(present):
                left = [module_of(m) for m in present if m not in chosen]
                raise QuantizeError(
                    f"ignore leaves {', '.join(left)} unquantized but not the rest of "
                    f"{prefix}.{{{','.join(group)}}}; vLLM requires fused layers to share one scheme",
                    where="quantize.ignore",
                    fix="ignore all of them or none",
                )
