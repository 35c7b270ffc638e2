"""Facts about a model read from the files being published, never typed by hand.

Size comes from the safetensors headers (no weights are read), quantization from
``config.json``'s ``quantization_config`` cross-checked against the tensor dtypes, context
and architecture from the config. The recipe may only *add* what the files cannot say (the
context actually served, the license, the publish date); when it differs from the config,
both are shown. ``Strip`` is the one-line metadata a catalog shows for a model.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from publisher.errors import CardError, PublisherError
from publisher.tensors import ModelFiles, TensorInfo

FP8_DTYPES = ("F8_E4M3", "F8_E5M2")
# what a quantized checkpoint stores beside its weights: scales and zero points are not parameters
SCALE_SUFFIXES = (
    ".weight_scale", ".weight_scale_inv", ".weight_zero_point", ".weight_global_scale",
    ".input_scale", ".input_zero_point", ".input_global_scale", ".output_scale",
    ".k_scale", ".v_scale", ".activation_scale",
)
_ARCH_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "Model")
_TASKS = {"ForCausalLM": "text-generation", "LMHeadModel": "text-generation"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Quantization(_Frozen):
    """What a quantized checkpoint is, in the words a reader needs."""

    label: str  # "FP8", "INT8", "INT4"
    scheme: str  # "fp8-dynamic", "fp8-block", "fp8-static", "int8-weight-only", ...
    method: str  # quant_method in config.json: "compressed-tensors" or "fp8"
    format: str | None  # compressed-tensors format, e.g. "float-quantized"
    weights: str  # "FP8 E4M3, per-channel scales (BF16, [out, 1])"
    activations: str  # "dynamic per-token FP8" or "not quantized (weight-only)"
    ignored: list[str]  # modules left in the original precision


class Context(_Frozen):
    config_tokens: int | None  # max_position_embeddings
    sliding_window: int | None
    served_tokens: int | None  # the recipe's card.context_length, when stated

    @property
    def tokens(self) -> int | None:
        """The context a user can rely on: the served one when stated, else the config's."""
        return self.served_tokens or self.config_tokens

    @property
    def short(self) -> str:
        return short_tokens(self.tokens) if self.tokens else "unknown"

    @property
    def text(self) -> str:
        if self.served_tokens and self.config_tokens and self.served_tokens != self.config_tokens:
            out = f"{self.served_tokens} served, {self.config_tokens} in config"
        elif self.tokens:
            out = f"{self.tokens} tokens"
        else:
            out = "unknown (config.json has no max_position_embeddings)"
        if self.sliding_window:
            out += f" (sliding window {self.sliding_window})"
        return out


class Architecture(_Frozen):
    class_name: str | None  # architectures[0], e.g. "MistralForCausalLM"
    model_type: str | None  # "mistral"
    family: str  # "Mistral"
    layers: int | None
    hidden_size: int | None
    intermediate_size: int | None
    attention_heads: int | None
    kv_heads: int | None
    vocab_size: int | None


class ModelFacts(_Frozen):
    """Everything a card states about one model folder that the folder itself proves."""

    parameter_count: int  # the model's parameters: a quantized copy's scales are not counted
    params: str  # "7.24B", the Hub's way
    size_class: str  # "7B", the catalog's way
    dtypes: dict[str, int]  # safetensors dtype -> parameters stored in it, largest first
    dtype: str  # the dtype holding most parameters
    quantization: Quantization | None
    context: Context
    architecture: Architecture
    task: str | None  # pipeline tag, e.g. "text-generation"
    tensor_count: int
    file_count: int
    total_bytes: int
    scale_count: int = 0  # values stored as quantization scales / zero points (not parameters)

    @property
    def quant_label(self) -> str:
        return self.quantization.label if self.quantization else self.dtype


class Strip(_Frozen):
    """The metadata strip a catalog shows (the seed pages' header line), as data."""

    task: str | None
    size: str  # "7B"
    params: str  # "7.24B"
    quant: str  # "FP8", or the dtype ("BF16") when not quantized
    context: str  # "4k"
    context_tokens: int | None
    published: date | None
    license: str | None
    architecture: str  # "Mistral"
    version: str | None
    creator: str | None = None  # who made the model (the recipe's, else the repo's namespace)
    original_published: date | None = None  # a re-publication's first publish date

    @property
    def original_published_text(self) -> str | None:
        """The first publish date of a re-publication (None when it is this version's date)."""
        if not self.original_published or self.original_published == self.published:
            return None
        return format_date(self.original_published)

    @property
    def published_text(self) -> str:
        return format_date(self.published) if self.published else "unpublished"

    def line(self) -> str:
        parts = [
            (self.task or "unknown task").upper().replace("-", " "),
            f"Model Size: {self.size}",
            f"Quant: {self.quant}",
            f"Ctx Length: {self.context}",
            f"Published: {self.published_text}",
            f"License: {self.license or 'unknown'}",
            f"Architecture: {self.architecture}",
        ]
        if self.creator:
            parts.append(f"Creator: {self.creator}")
        if self.original_published and self.original_published != self.published:
            parts.append(f"First published: {format_date(self.original_published)}")
        return " · ".join(parts)


# ----------------------------------------------------------------------------- formatting


def human_count(n: int) -> str:
    """3 significant digits with a unit, as the Hub shows sizes: 7.24B, 70.6B, 494M."""
    units = (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3))
    for i, (suffix, div) in enumerate(units):
        if n >= div:
            text = f"{n / div:.3g}"
            if float(text) >= 1000 and i > 0:  # 999.7M rounds to 1000M: say 1B
                suffix, div = units[i - 1]
                text = f"{n / div:.3g}"
            return f"{text}{suffix}"
    return str(n)


def size_class(n: int) -> str:
    """The nominal size a catalog files a model under: 7.24B -> 7B, 3.82B -> 3.8B, 70.6B -> 70B.

    Never bigger than the model (rounded down). From 10B: whole billions. From 1B: one
    significant decimal (3.82B -> 3.8B, 1.54B -> 1.5B), or the whole number when the
    fraction is under 5% of the size, as models are named (7.24B -> 7B, 8.03B -> 8B). Below:
    two significant digits in millions (494M -> 490M).
    """
    b = n / 1e9
    if b >= 10:
        return f"{math.floor(b)}B"
    if b >= 1:
        whole = math.floor(b)
        if b - whole < 0.05 * b:
            return f"{whole}B"
        return f"{math.floor(round(b * 10, 6)) / 10:g}B"
    m = n / 1e6
    if m >= 100:
        return f"{math.floor(m / 10) * 10}M"
    if m >= 1:
        return f"{math.floor(m)}M"
    return human_count(n)


def short_tokens(n: int) -> str:
    """4096 -> 4k, 32768 -> 32k, 131072 -> 128k, 100000 -> 100k."""
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    if n >= 1000:
        return f"{round(n / 1000)}k"
    return str(n)


def format_date(d: date) -> str:
    return f"{d:%b} {d.day}, {d.year}"


# ----------------------------------------------------------------------------- reading


def _int(config: dict[str, Any], key: str) -> int | None:
    v = config.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def architecture_of(config: dict[str, Any]) -> Architecture:
    archs = config.get("architectures")
    class_name = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    family = None
    if class_name:
        for suffix in _ARCH_SUFFIXES:
            if class_name.endswith(suffix) and len(class_name) > len(suffix):
                family = class_name[: -len(suffix)]
                break
    if family is None:
        family = (model_type or "unknown").replace("_", " ").title()
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else None
    c = text_config or config
    return Architecture(
        class_name=class_name,
        model_type=model_type,
        family=family,
        layers=_int(c, "num_hidden_layers"),
        hidden_size=_int(c, "hidden_size"),
        intermediate_size=_int(c, "intermediate_size"),
        attention_heads=_int(c, "num_attention_heads"),
        kv_heads=_int(c, "num_key_value_heads"),
        vocab_size=_int(c, "vocab_size"),
    )


def task_of(arch: Architecture) -> str | None:
    for suffix, task in _TASKS.items():
        if arch.class_name and arch.class_name.endswith(suffix):
            return task
    return None


def context_of(config: dict[str, Any], served: int | None, where: str) -> Context:
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else None
    c = text_config or config
    max_pos = _int(c, "max_position_embeddings")
    window = _int(c, "sliding_window")
    if served and max_pos and served > max_pos and not c.get("rope_scaling"):
        raise CardError(
            f"card.context_length {served} is more than the model's max_position_embeddings {max_pos}",
            where=where,
            fix=f"state at most {max_pos}, or leave card.context_length out",
        )
    return Context(config_tokens=max_pos, sliding_window=window, served_tokens=served)


def _strategy_text(strategy: str | None, block: Any, group: Any) -> str:
    if strategy == "channel":
        return "per-channel"
    if strategy == "block" and isinstance(block, list):
        return f"{'×'.join(str(b) for b in block)} blocks"
    if strategy == "group" and group:
        return f"per-group ({group})"
    if strategy == "tensor":
        return "per-tensor"
    if strategy == "token":
        return "per-token"
    return strategy or "unspecified"


def _numeric(args: dict[str, Any]) -> str:
    bits = args.get("num_bits")
    kind = "FP" if args.get("type") == "float" else "INT"
    return f"{kind}{bits}" if bits else kind


def quantization_of(config: dict[str, Any], tensors: dict[str, TensorInfo], where: str) -> Quantization | None:
    qc = config.get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, dict):
        raise CardError("quantization_config is not an object", where=where)
    method = str(qc.get("quant_method", "unknown"))
    if method == "compressed-tensors":
        q = _compressed_tensors(qc, where)
    elif method == "fp8":
        block = qc.get("weight_block_size")
        act = str(qc.get("activation_scheme", "dynamic"))
        kind = "block" if block else ("dynamic" if act == "dynamic" else "static")
        q = Quantization(
            label="FP8",
            scheme=f"fp8-{kind}",
            method=method,
            format=None,
            weights=f"FP8 E4M3, {_strategy_text('block' if block else 'tensor', block, None)} scales (weight_scale_inv)",
            activations=f"{act} FP8",
            ignored=list(qc.get("modules_to_not_convert") or qc.get("ignored_layers") or []),
        )
    else:
        bits = qc.get("bits") or qc.get("w_bit")
        label = f"INT{bits}" if bits else method.upper()
        q = Quantization(
            label=label, scheme=method, method=method, format=None,
            weights=f"{label} ({method})", activations="not quantized", ignored=[],
        )
    _check_against_tensors(q, tensors, where)
    return q


def _compressed_tensors(qc: dict[str, Any], where: str) -> Quantization:
    groups = qc.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise CardError("compressed-tensors quantization_config has no config_groups", where=where)
    first = groups[sorted(groups)[0]]
    if not isinstance(first, dict) or not isinstance(first.get("weights"), dict):
        raise CardError("compressed-tensors config group has no 'weights'", where=where)
    w = first["weights"]
    a = first.get("input_activations") if isinstance(first.get("input_activations"), dict) else None
    label = _numeric(w)
    w_strategy = w.get("strategy")
    w_text = f"{label}{' E4M3' if label == 'FP8' else ''}, {_strategy_text(w_strategy, w.get('block_structure'), w.get('group_size'))} scales"
    if a is None:
        kind, a_text = "weight-only", "not quantized (weight-only)"
    else:
        dyn = bool(a.get("dynamic"))
        a_text = f"{'dynamic' if dyn else 'static'} {_strategy_text(a.get('strategy'), None, a.get('group_size'))} {_numeric(a)}"
        if w_strategy == "block":
            kind = "block"
        else:
            kind = "dynamic" if dyn else "static"
    return Quantization(
        label=label,
        scheme=f"{label.lower()}-{kind}",
        method="compressed-tensors",
        format=qc.get("format") or first.get("format"),
        weights=w_text,
        activations=a_text,
        ignored=[str(x) for x in qc.get("ignore") or []],
    )


def _check_against_tensors(q: Quantization, tensors: dict[str, TensorInfo], where: str) -> None:
    """config.json and the tensors must tell the same story, or the card would lie."""
    if q.label == "FP8" and not any(t.dtype in FP8_DTYPES for t in tensors.values()):
        raise CardError(
            "config.json declares FP8 quantization but no tensor is stored in FP8",
            where=where,
            fix="re-run the quantization; the weights are not what the config says",
        )
    if q.label == "FP8" and q.method == "compressed-tensors" and q.scheme != "fp8-block":
        for name, t in sorted(tensors.items()):
            if not name.endswith(".weight_scale"):
                continue
            weight = tensors.get(name[: -len("_scale")])
            if weight is None or len(weight.shape) != 2:
                continue
            per_channel = "per-channel" in q.weights
            expected = (weight.shape[0], 1) if per_channel else None
            if per_channel and t.shape != expected:
                raise CardError(
                    f"config.json says per-channel FP8 but {name} has shape {list(t.shape)}, not {list(expected or ())}",
                    where=where,
                )
            break


def model_facts(folder: Path, *, context_length: int | None = None) -> ModelFacts:
    """Read the facts of one model folder (config.json + safetensors headers)."""
    folder = Path(folder)
    try:
        files = ModelFiles.open(folder)
    except CardError:
        raise
    except PublisherError as e:
        raise CardError(f"cannot read the model files ({e.what})", where=e.where or str(folder)) from e
    config: dict[str, Any] = dict(files.config)
    where = str(folder / "config.json")
    if not config:
        raise CardError("config.json is missing or empty", where=where, fix="a model folder needs its config.json")
    quantized = isinstance(config.get("quantization_config"), dict)
    by_dtype: dict[str, int] = {}
    scales = 0
    for name, t in files.tensors.items():
        if quantized and name.endswith(SCALE_SUFFIXES):
            scales += t.numel
            continue
        by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.numel
    dtypes = dict(sorted(by_dtype.items(), key=lambda kv: (-kv[1], kv[0])))
    count = sum(dtypes.values())
    arch = architecture_of(config)
    return ModelFacts(
        parameter_count=count,
        params=human_count(count),
        size_class=size_class(count),
        dtypes=dtypes,
        dtype=next(iter(dtypes)) if dtypes else "unknown",
        quantization=quantization_of(config, files.tensors, where),
        context=context_of(config, context_length, where),
        architecture=arch,
        task=task_of(arch),
        tensor_count=len(files.tensors),
        file_count=len(files.files),
        total_bytes=sum(p.stat().st_size for p in files.files),
        scale_count=scales,
    )


def strip_of(
    facts: ModelFacts,
    *,
    license: str | None,
    published: date | None,
    version: str | None = None,
    creator: str | None = None,
    original_published: date | None = None,
) -> Strip:
    return Strip(
        task=facts.task,
        size=facts.size_class,
        params=facts.params,
        quant=facts.quant_label,
        context=facts.context.short,
        context_tokens=facts.context.tokens,
        published=published,
        license=license,
        architecture=facts.architecture.family,
        version=version,
        creator=creator,
        original_published=original_published,
    )
