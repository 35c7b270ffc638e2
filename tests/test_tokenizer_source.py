"""`tokenizer_source` in real builds: the output carries the named model's tokenizer files (the
base's by default), transformers loads them, and the embedding rows still cover the vocabulary."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.build import BuildOptions, build

RECIPE = """\
merge_method: linear
base_model: {a}
models:
  - model: {a}
    parameters: {weight: 0.5}
  - model: {b}
    parameters: {weight: 0.5}
dtype: bfloat16
"""


@pytest.fixture
def marked_b(family: dict[str, Path], tmp_path: Path) -> Path:
    """Parent b with a tokenizer config of its own (a different template and length limit)."""
    b = tmp_path / "b-marked"
    shutil.copytree(family["b"], b)
    config = json.loads((b / "tokenizer_config.json").read_text())
    config.update(model_max_length=1234, chat_template="{% for m in messages %}B:{{ m['content'] }}{% endfor %}")
    (b / "tokenizer_config.json").write_text(json.dumps(config))
    return b


@pytest.mark.parametrize("source", [None, "base", "b"])
def test_tokenizer_source_decides_the_tokenizer_files(
    source: str | None, family: dict[str, Path], marked_b: Path, recipe_file: Callable[..., Path], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    text = RECIPE + ("" if source is None else f"tokenizer_source: {marked_b if source == 'b' else source}\n")
    out = tmp_path / "out"
    build(recipe_file(text, a=family["a"], b=marked_b), out, BuildOptions(quiet=True, render_cards=False))
    expected = marked_b if source == "b" else family["a"]
    assert json.loads((out / "tokenizer_config.json").read_text()) == json.loads((expected / "tokenizer_config.json").read_text())
    assert (out / "tokenizer.json").read_bytes() == (expected / "tokenizer.json").read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == (1234 if source == "b" else 32768)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == ("B:hi" if source == "b" else "<s>[INST] hi [/INST]")
    config = json.loads((out / "config.json").read_text())
    assert len(tokenizer) <= config["vocab_size"]
