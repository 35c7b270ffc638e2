"""Structural checks: the facts a broken build gets wrong, read from headers and small files only.

config.json against the tensors (vocabulary rows of the embedding and lm_head, layer count,
head and kv-head widths, tied embeddings), the tokenizer as transformers loads it (every id
and special token inside the vocabulary), the chat template on a two-turn conversation,
generation_config's token ids, and an FP8 variant's quantization_config against its tensors.
Each failure is one Finding naming the file and the fact; nothing here reads a weight.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from publisher.check.results import Finding
from publisher.errors import PublisherError
from publisher.tensors import ModelFiles, TensorInfo

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
TWO_TURNS = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
GENERATION_IDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


class _Collector:
    def __init__(self, variant: str, folder: Path, build_dir: Path) -> None:
        self.variant = variant
        self.folder = folder
        self.build_dir = build_dir
        self.findings: list[Finding] = []

    def file(self, name: str) -> str:
        path = self.folder / name
        try:
            return str(path.relative_to(self.build_dir))
        except ValueError:
            return str(path)

    def fail(self, name: str, message: str) -> None:
        self.findings.append(Finding(kind="structural", variant=self.variant, where=self.file(name), message=message))


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's config (multimodal configs nest it under ``text_config``)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def _int(config: dict[str, Any], key: str) -> int | None:
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _find(tensors: dict[str, TensorInfo], *suffixes: str) -> TensorInfo | None:
    for suffix in suffixes:
        for name, info in tensors.items():
            if name == suffix or name.endswith("." + suffix):
                return info
    return None


def check_model_folder(folder: Path, variant: str, build_dir: Path) -> list[Finding]:
    """Every structural check of one model folder (the merged model or a variant)."""
    c = _Collector(variant, Path(folder), Path(build_dir))
    try:
        files = ModelFiles.open(c.folder)
    except PublisherError as e:
        c.fail("model.safetensors.index.json", e.what)
        return c.findings
    if not files.config:
        c.fail("config.json", "missing or not a JSON object")
        return c.findings
    config = text_config(dict(files.config))
    _check_shapes(c, config, dict(files.config), files.tensors)
    vocab = _int(config, "vocab_size")
    if vocab is not None:
        _check_tokenizer(c, vocab)
        _check_generation_config(c, vocab)
    if "quantization_config" in files.config:
        _check_quantization(c, dict(files.config), files.tensors)
    return c.findings


def _check_shapes(c: _Collector, config: dict[str, Any], full: dict[str, Any], tensors: dict[str, TensorInfo]) -> None:
    vocab = _int(config, "vocab_size")
    hidden = _int(config, "hidden_size")
    embed = _find(tensors, "embed_tokens.weight", "wte.weight", "word_embeddings.weight")
    head = tensors.get("lm_head.weight")
    tied = bool(config.get("tie_word_embeddings", full.get("tie_word_embeddings", False)))
    if embed is None:
        c.fail("model.safetensors.index.json", "no input embedding tensor (embed_tokens.weight)")
    elif vocab is not None and embed.shape[0] != vocab:
        c.fail("config.json", f"vocab_size is {vocab} but {embed.name} has {embed.shape[0]} rows")
    if embed is not None and hidden is not None and len(embed.shape) == 2 and embed.shape[1] != hidden:
        c.fail("config.json", f"hidden_size is {hidden} but {embed.name} has {embed.shape[1]} columns")
    if head is not None and vocab is not None and head.shape[0] != vocab:
        c.fail("config.json", f"vocab_size is {vocab} but lm_head.weight has {head.shape[0]} rows")
    if head is None and not tied:
        c.fail("config.json", "tie_word_embeddings is false but there is no lm_head.weight")
    layers = sorted({int(m.group(1)) for name in tensors if (m := _LAYER.search(name))})
    declared = _int(config, "num_hidden_layers")
    if declared is not None and layers != list(range(declared)):
        found = f"{len(layers)} (0–{layers[-1]})" if layers else "none"
        c.fail("config.json", f"num_hidden_layers is {declared} but the tensors hold layers {found}")
    heads = _int(config, "num_attention_heads")
    kv_heads = _int(config, "num_key_value_heads") or heads
    head_dim = _int(config, "head_dim") or (hidden // heads if hidden and heads else None)
    q = _find(tensors, "layers.0.self_attn.q_proj.weight")
    k = _find(tensors, "layers.0.self_attn.k_proj.weight")
    if q is not None and heads and head_dim and q.shape[0] != heads * head_dim:
        c.fail("config.json", f"num_attention_heads × head_dim is {heads} × {head_dim} but {q.name} has {q.shape[0]} rows")
    if k is not None and kv_heads and head_dim and k.shape[0] != kv_heads * head_dim:
        c.fail("config.json", f"num_key_value_heads × head_dim is {kv_heads} × {head_dim} but {k.name} has {k.shape[0]} rows")


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _check_tokenizer(c: _Collector, vocab: int) -> None:
    names = [n for n in ("tokenizer.json", "tokenizer.model", "vocab.json") if (c.folder / n).is_file()]
    if not names:
        c.fail("tokenizer.json", "no tokenizer files (tokenizer.json, tokenizer.model or vocab.json)")
        return
    try:
        tok = _load_tokenizer(c.folder)
    except Exception as e:  # any loader failure is the fact to report
        c.fail(names[0], f"AutoTokenizer cannot load it ({type(e).__name__}: {_first_line(e)})")
        return
    size = len(tok)
    if size > vocab:
        c.fail(names[0], f"the tokenizer has {size} ids (0–{size - 1}) but the embedding has only {vocab} rows (vocab_size)")
    for attr, token_id in _special_ids(tok):
        if not 0 <= token_id < vocab:
            c.fail("tokenizer_config.json", f"{attr} has id {token_id}, outside the vocabulary (size {vocab})")
    _check_chat_template(c, tok)


def _special_ids(tok: Any) -> Iterator[tuple[str, int]]:
    for attr in ("bos_token", "eos_token", "unk_token", "pad_token"):
        token = getattr(tok, attr, None)
        if token is None:
            continue
        token_id = tok.convert_tokens_to_ids(str(token))
        if isinstance(token_id, int):
            yield attr, token_id
    for token in getattr(tok, "all_special_tokens", []) or []:
        token_id = tok.convert_tokens_to_ids(str(token))
        if isinstance(token_id, int):
            yield f"special token {token!r}", token_id


def _check_chat_template(c: _Collector, tok: Any) -> None:
    if not getattr(tok, "chat_template", None):
        return  # a base model has none; nothing claims it chats
    source = "chat_template.jinja" if (c.folder / "chat_template.jinja").is_file() else "tokenizer_config.json"
    try:
        text = tok.apply_chat_template(TWO_TURNS, tokenize=False, add_generation_prompt=True)
    except Exception as e:
        c.fail(source, f"the chat template does not render a two-turn conversation ({type(e).__name__}: {_first_line(e)})")
        return
    if not isinstance(text, str) or not all(m["content"] in text for m in TWO_TURNS):
        c.fail(source, "the chat template renders a two-turn conversation without the messages' text")


def _check_generation_config(c: _Collector, vocab: int) -> None:
    path = c.folder / "generation_config.json"
    if not path.is_file():
        return
    try:
        gen = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        c.fail("generation_config.json", f"not valid JSON ({e})")
        return
    if not isinstance(gen, dict):
        c.fail("generation_config.json", "not a JSON object")
        return
    for key in GENERATION_IDS:
        value = gen.get(key)
        ids = value if isinstance(value, list) else [value]
        for token_id in ids:
            if token_id is None:
                continue
            if not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id < vocab:
                c.fail("generation_config.json", f"{key} {token_id!r} is not a token id below vocab_size {vocab}")


def _check_quantization(c: _Collector, config: dict[str, Any], tensors: dict[str, TensorInfo]) -> None:
    """compressed-tensors FP8: every quantized weight is F8_E4M3 with a scale of the declared layout."""
    from publisher.check.fp8sim import ScaleLayout, layout_of

    try:
        layout: ScaleLayout = layout_of(config)
    except ValueError as e:
        c.fail("config.json", f"quantization_config: {e}")
        return
    ignored = set(layout.ignore)
    quantized = 0
    for name, info in sorted(tensors.items()):
        if not name.endswith(".weight") or info.dtype != "F8_E4M3":
            continue
        quantized += 1
        module = name.removesuffix(".weight")
        if module in ignored:
            c.fail("config.json", f"quantization_config ignores {module} but {name} is F8_E4M3")
        scale = tensors.get(f"{module}.weight_scale")
        if scale is None:
            c.fail("config.json", f"{name} is F8_E4M3 but has no {module}.weight_scale")
            continue
        expected = layout.scale_shape(info.shape)
        if tuple(scale.shape) != expected:
            c.fail("config.json", f"{layout.strategy} scales need {module}.weight_scale of shape {list(expected)}, found {list(scale.shape)}")
        if scale.dtype not in ("BF16", "F16", "F32"):
            c.fail("config.json", f"{module}.weight_scale is {scale.dtype}; scales are bf16, fp16 or fp32")
    if quantized == 0:
        c.fail("config.json", "quantization_config declares FP8 but no weight is F8_E4M3")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
