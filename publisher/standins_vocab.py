"""Stand-ins whose vocabulary differs from the tiny family's (for tokenizer merges).

The tiny family's tokenizer is ``<unk> <s> </s> w3 … w127``. ``v1`` shares the specials and
``w3 … w99``, adds ``y0 … y34`` and an added special token ``<|im_end|>``: 136 rows. Its own
module, so the family's bytes (and the oracle's digests of them) never move.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from publisher.standins import (
    SPECIALS,
    TINY,
    MistralShape,
    Recipe,
    generate_model,
    write_word_level_tokenizer,
)


def write_word_tokenizer(out: Path, words: list[str], added: list[str]) -> None:
    """A word-level tokenizer over ``SPECIALS + words + added`` (ids in that order), no chat template."""
    write_word_level_tokenizer(out, [*SPECIALS, *words, *added], [*SPECIALS, *added])


def generate_vocab_family(root: Path, shape: MistralShape = TINY, dtype: str = "BF16") -> dict[str, Path]:
    """``v1``: a stand-in with a different vocabulary (see the module docstring)."""
    words = [f"w{i}" for i in range(3, 100)] + [f"y{i}" for i in range(35)]
    added = ["<|im_end|>"]
    v1_shape = replace(shape, vocab=len(SPECIALS) + len(words) + len(added))
    v1 = generate_model(root / "v1", v1_shape, recipe=Recipe(seed=4001), dtype=dtype, tokenizer=False)
    write_word_tokenizer(v1, words, added)
    return {"v1": v1}
