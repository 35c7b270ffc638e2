"""Stand-ins whose vocabulary differs from the tiny family's (for tokenizer merges).

The tiny family's tokenizer is ``<unk> <s> </s> w3 … w127``. ``v1`` shares the specials and
``w3 … w99``, adds ``y0 … y34`` and an added special token ``<|im_end|>``: 136 rows. Its own
module, so the family's bytes (and the oracle's digests of them) never move.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from publisher.standins import TINY, MistralShape, Recipe, generate_model

SPECIALS = ["<unk>", "<s>", "</s>"]


def write_word_tokenizer(out: Path, words: list[str], added: list[str]) -> None:
    """A word-level tokenizer over ``SPECIALS + words + added`` (ids in that order)."""
    tokens = [*SPECIALS, *words, *added]
    specials = {*SPECIALS, *added}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, t in enumerate(tokens)
            if t in specials
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(tokens)}, "unk_token": "<unk>"},
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, indent=1) + "\n")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 32768,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n"
    )


def generate_vocab_family(root: Path, shape: MistralShape = TINY, dtype: str = "BF16") -> dict[str, Path]:
    """``v1``: a stand-in with a different vocabulary (see the module docstring)."""
    words = [f"w{i}" for i in range(3, 100)] + [f"y{i}" for i in range(35)]
    added = ["<|im_end|>"]
    v1_shape = replace(shape, vocab=len(SPECIALS) + len(words) + len(added))
    v1 = generate_model(root / "v1", v1_shape, recipe=Recipe(seed=4001), dtype=dtype, tokenizer=False)
    write_word_tokenizer(v1, words, added)
    return {"v1": v1}
