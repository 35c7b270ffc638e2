"""Deterministic stand-in Mistral models: test fixtures, demo parents, benchmark inputs.

Every tensor is drawn from a generator seeded by (model seed, tensor name, band), so a
model is the same bytes on any machine and can be generated band by band without holding
it in memory (the 7B-shaped benchmark parents are 14.5 GB each). A "family" is a base
plus fine-tunes, each fine-tune = base + a seeded perturbation, which is what task-vector
methods (task arithmetic, TIES, DARE) need to be meaningful.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from publisher.determinism import tensor_seed
from publisher.lazy import torch
from publisher.tensors import (
    DTYPES,
    ITEMSIZE,
    PlannedTensor,
    ShardWriter,
    assign_shards,
    shard_names,
    write_index,
)

BAND_ELEMENTS = 1 << 22  # generation granularity; fixed so bytes never depend on memory size


@dataclass(frozen=True)
class MistralShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    max_position_embeddings: int = 32768
    sliding_window: int | None = 4096
    tie_word_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


# 32 layers so that per-layer gradients mean what they mean on a 7B; tiny widths.
TINY = MistralShape(hidden=16, intermediate=32, layers=32, heads=4, kv_heads=2, vocab=128)
# Few layers but 7B-sized bands: each MLP weight (8448 x 512 = 4.3 Mi elements) is past the
# 2^22-element row bands and SLERP's 2^20-element chunks, so the oracle checks those paths.
WIDE = MistralShape(hidden=512, intermediate=8448, layers=2, heads=4, kv_heads=2, vocab=256)
WIDE_SHARD_BYTES = 20_000_000  # three shards per parent; layer 0 ends in the second
SEVEN_B = MistralShape(hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=32000)


def mistral_config(shape: MistralShape, dtype: str = "BF16") -> dict[str, object]:
    """config.json as transformers writes it for MistralForCausalLM."""
    torch_name = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[dtype]
    return {
        "architectures": ["MistralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "dtype": torch_name,
        "eos_token_id": 2,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "hidden_size": shape.hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": shape.max_position_embeddings,
        "model_type": "mistral",
        "num_attention_heads": shape.heads,
        "num_hidden_layers": shape.layers,
        "num_key_value_heads": shape.kv_heads,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": shape.sliding_window,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "use_cache": True,
        "vocab_size": shape.vocab,
    }


def tensor_plan(shape: MistralShape, dtype: str = "BF16") -> list[PlannedTensor]:
    """Every tensor of a Mistral checkpoint, in the order the layers run."""
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_heads * shape.head_dim
    out = [PlannedTensor("model.embed_tokens.weight", dtype, (shape.vocab, h))]
    for n in range(shape.layers):
        p = f"model.layers.{n}"
        out += [
            PlannedTensor(f"{p}.input_layernorm.weight", dtype, (h,)),
            PlannedTensor(f"{p}.self_attn.q_proj.weight", dtype, (h, h)),
            PlannedTensor(f"{p}.self_attn.k_proj.weight", dtype, (kv, h)),
            PlannedTensor(f"{p}.self_attn.v_proj.weight", dtype, (kv, h)),
            PlannedTensor(f"{p}.self_attn.o_proj.weight", dtype, (h, h)),
            PlannedTensor(f"{p}.post_attention_layernorm.weight", dtype, (h,)),
            PlannedTensor(f"{p}.mlp.gate_proj.weight", dtype, (i, h)),
            PlannedTensor(f"{p}.mlp.up_proj.weight", dtype, (i, h)),
            PlannedTensor(f"{p}.mlp.down_proj.weight", dtype, (h, i)),
        ]
    out.append(PlannedTensor("model.norm.weight", dtype, (h,)))
    if not shape.tie_word_embeddings:
        out.append(PlannedTensor("lm_head.weight", dtype, (shape.vocab, h)))
    return out


@dataclass(frozen=True)
class Recipe:
    """How a stand-in's values are drawn: its own seed, optionally over a base."""

    seed: int
    base_seed: int | None = None
    perturbation: float = 0.0


def _draw(seed: int, name: str, band: int, count: int, is_norm: bool) -> torch.Tensor:
    gen = torch.Generator().manual_seed(tensor_seed(seed, f"{name}#{band}"))
    values = torch.randn(count, generator=gen, dtype=torch.float32)
    if is_norm:
        return values.mul_(0.05).add_(1.0)
    return values.mul_(0.02)


def _values(recipe: Recipe, name: str, band: int, count: int) -> torch.Tensor:
    is_norm = "norm" in name
    if recipe.base_seed is None:
        return _draw(recipe.seed, name, band, count, is_norm)
    base = _draw(recipe.base_seed, name, band, count, is_norm)
    noise = _draw(recipe.seed, name, band, count, False)  # std 0.02
    return base.add_(noise, alpha=recipe.perturbation / 0.02)


def generate_model(
    out: Path,
    shape: MistralShape = TINY,
    *,
    recipe: Recipe,
    dtype: str = "BF16",
    max_shard_bytes: int = 5_000_000_000,
    card: str | None = None,
    tokenizer: bool = True,
    tokenizer_kind: str = "words",
) -> Path:
    """Write a loadable Mistral model folder to ``out``, streaming band by band."""
    out.mkdir(parents=True, exist_ok=True)
    plan = tensor_plan(shape, dtype)
    shards = assign_shards(plan, max_shard_bytes)
    names = shard_names(len(shards))
    torch_dtype = DTYPES[dtype][0]
    for shard, fname in zip(shards, names, strict=True):
        writer = ShardWriter(out / fname, shard, {"format": "pt"})
        for t in shard:
            flat = torch.empty(t.nbytes // ITEMSIZE[dtype], dtype=torch_dtype)
            for band, start in enumerate(range(0, flat.numel(), BAND_ELEMENTS)):
                count = min(BAND_ELEMENTS, flat.numel() - start)
                flat[start : start + count] = _values(recipe, t.name, band, count)
            writer.write(t.name, flat.reshape(t.shape))
            del flat
        writer.close(fsync=False)
    total = sum(t.nbytes // ITEMSIZE[dtype] for t in plan)
    write_index(out, shards, names, total)
    (out / "config.json").write_text(json.dumps(mistral_config(shape, dtype), indent=2, sort_keys=True) + "\n")
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": 1, "eos_token_id": 2, "_from_model_config": True}, indent=2) + "\n"
    )
    if tokenizer:
        write_tokenizer(out, shape.vocab, kind=tokenizer_kind)
    if card is not None:
        (out / "README.md").write_text(card)
    return out


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<s>' if loop.first else '' }}"
    "{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}</s>{% endif %}"
    "{% endfor %}"
)


CHARS = "\n" + "".join(chr(c) for c in range(32, 127))  # newline and printable ASCII


SPECIALS = ["<unk>", "<s>", "</s>"]


def write_tokenizer(out: Path, vocab: int, kind: str = "words") -> None:
    """A word-level tokenizer (``<unk> <s> </s> w3 … w{vocab-1}``) that transformers loads offline.

    ``kind="chars"``: one token per character (newline and printable ASCII, then ``w…`` fillers),
    so English text such as the measured pass's evaluation text is mostly known tokens.
    """
    tokens = list(SPECIALS)
    if kind == "chars":
        tokens += CHARS[: vocab - len(SPECIALS)]
    tokens += [f"w{i}" for i in range(len(tokens), vocab)]
    pre_tokenizer: dict[str, object] = _CHAR_SPLIT if kind == "chars" else {"type": "WhitespaceSplit"}
    write_word_level_tokenizer(out, tokens, SPECIALS, pre_tokenizer=pre_tokenizer, chat_template=CHAT_TEMPLATE)


def write_word_level_tokenizer(
    out: Path,
    tokens: list[str],
    specials: list[str],
    *,
    pre_tokenizer: dict[str, object] | None = None,
    chat_template: str | None = None,
) -> None:
    """``tokenizer.json`` (WordLevel, ids in ``tokens`` order, ``specials`` as added special tokens),
    ``tokenizer_config.json`` and ``special_tokens_map.json``: the one writer of every stand-in's
    tokenizer, so their bytes (and the oracle's digests of them) come from one place."""
    special = set(specials)
    tokenizer: dict[str, object] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": tok,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, tok in enumerate(tokens)
            if tok in special
        ],
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer or {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {tok: i for i, tok in enumerate(tokens)}, "unk_token": "<unk>"},
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1) + "\n")
    config: dict[str, object] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 32768,
    }
    if chat_template is not None:
        config["chat_template"] = chat_template
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n"
    )


_CHAR_SPLIT = {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False}

FAMILY_BASE_SEED = 1000


def generate_family(
    root: Path,
    shape: MistralShape = TINY,
    *,
    finetunes: int = 3,
    dtype: str = "BF16",
    perturbation: float = 0.004,
    max_shard_bytes: int = 5_000_000_000,
) -> dict[str, Path]:
    """``base`` plus ``ft1``…``ftN`` (base + seeded perturbation), plus two unrelated models ``a``/``b``."""
    models = {"base": Recipe(seed=FAMILY_BASE_SEED)}
    for k in range(1, finetunes + 1):
        models[f"ft{k}"] = Recipe(seed=FAMILY_BASE_SEED + k, base_seed=FAMILY_BASE_SEED, perturbation=perturbation)
    models["a"] = Recipe(seed=1)
    models["b"] = Recipe(seed=2)
    return {
        name: generate_model(root / name, shape, recipe=r, dtype=dtype, max_shard_bytes=max_shard_bytes)
        for name, r in models.items()
    }


def with_layers(shape: MistralShape, layers: int) -> MistralShape:
    return replace(shape, layers=layers)
