"""Tokenizer merges (``tokenizer_source: union`` / ``tokenizer:``): the output vocabulary and the
embedding rows re-indexed to it. Bytes against mergekit are the oracle cases ``union_linear``,
``tokenizer_block_slerp`` and ``tokenizer_source_model_task_arithmetic``; here: what each row is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from publisher.build import BuildOptions, build
from publisher.errors import RecipeError
from publisher.recipe import load_recipe
from publisher.standins_vocab import generate_vocab_family

E = "model.embed_tokens.weight"


@pytest.fixture(scope="module")
def v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_vocab_family(tmp_path_factory.mktemp("vocab"))["v1"]


def _vocab(folder: Path) -> dict[str, int]:
    return dict(AutoTokenizer.from_pretrained(folder).get_vocab())


def test_tokenizer_block_schema(recipe_file: Callable[..., Path]) -> None:
    head = "merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {weight: 1}\n  - model: org/b\n    parameters: {weight: 1}\n"
    block = "tokenizer:\n  source: union\n  tokens:\n    <|im_start|>: {source: {kind: zero}}\n    x: {source: org/b, force: true}\n  pad_to_multiple_of: 8\n  padd: 3\n"
    loaded = load_recipe(recipe_file(head + block))
    assert loaded.merge.tokenizer is not None and loaded.merge.tokenizer.pad_to_multiple_of == 8
    assert "unknown key 'padd' has no effect" in loaded.warnings[0]
    with pytest.raises(RecipeError, match="not both"):
        load_recipe(recipe_file(head + block + "tokenizer_source: base\n"))
    with pytest.raises(RecipeError, match="token_id or token"):
        load_recipe(recipe_file(head + "tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: org/a}}\n"))


def test_union_rows(recipe_file: Callable[..., Path], family: dict[str, Path], v1: Path, tmp_path: Path) -> None:
    text = (
        "merge_method: linear\nbase_model: {base}\nmodels:\n  - model: {base}\n    parameters: {weight: 0.5}\n"
        "  - model: {v1}\n    parameters: {weight: 0.5}\ntokenizer_source: union\ndtype: bfloat16\n"
    )
    out = tmp_path / "out"
    build(recipe_file(text, base=family["base"], v1=v1), out, BuildOptions(threads=1, quiet=True, render_cards=False))
    merged, base, other = (load_file(p / "model.safetensors") for p in (out, family["base"], v1))
    vocab, vb, vv = _vocab(out), _vocab(family["base"]), _vocab(v1)
    assert set(vocab) == set(vb) | set(vv) and len(vocab) == 164
    assert json.loads((out / "config.json").read_text())["vocab_size"] == 164
    assert merged[E].shape == (164, 16) and merged["model.norm.weight"].shape == base["model.norm.weight"].shape
    # a token only one parent has: that parent's row for both, so the merge is that row
    assert torch.equal(merged[E][vocab["y3"]], other[E][vv["y3"]])
    assert torch.equal(merged[E][vocab["w120"]], base[E][vb["w120"]])
    # a token both have: the weighted mix of their own rows
    mix = ((0.5 * base[E][vb["w7"]].float() + 0.5 * other[E][vv["w7"]].float()) / 1.0).to(torch.bfloat16)
    assert torch.equal(merged[E][vocab["w7"]], mix)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.convert_tokens_to_ids(["y3", "<|im_end|>"]) == [vocab["y3"], vocab["<|im_end|>"]]


def test_tokens_zero_forced_and_padding(recipe_file: Callable[..., Path], family: dict[str, Path], v1: Path, tmp_path: Path) -> None:
    text = (
        "merge_method: linear\nbase_model: {base}\nmodels:\n  - model: {base}\n    parameters: {weight: 0.5}\n"
        "  - model: {v1}\n    parameters: {weight: 0.5}\ndtype: bfloat16\ntokenizer:\n  source: base\n"
        "  tokens:\n    <|new|>: {source: {kind: zero}}\n    w5: {source: {v1}, force: true}\n  pad_to_multiple_of: 64\n"
    )
    out = tmp_path / "out"
    build(recipe_file(text, base=family["base"], v1=v1), out, BuildOptions(threads=1, quiet=True, render_cards=False))
    merged, other = load_file(out / "model.safetensors"), load_file(v1 / "model.safetensors")
    vocab, vv = _vocab(out), _vocab(v1)
    assert len(vocab) == 129 and merged[E].shape == (192, 16)  # 128 + 1 added, padded to 64
    assert not merged[E][vocab["<|new|>"]].any()
    assert torch.equal(merged[E][vocab["w5"]], other[E][vv["w5"]])  # forced: v1's row for everyone
    pad = merged[E][129:]
    assert torch.equal(pad, pad[:1].expand_as(pad))  # padding rows: one mean row
