"""Named chat templates render what mergekit 0.1.5's render (its renderings, made by
tests/oracle/chat_templates.py, are in tests/fixtures/chat_templates.json), through
transformers' apply_chat_template; a build writes them, and ``auto`` picks the parents' most
common one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from publisher.chat_templates import NAMED, resolve_template
from publisher.errors import RecipeError
from publisher.recipe import load_recipe
from publisher.standins import write_tokenizer

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "chat_templates.json").read_text())
CASES = [(name, i) for name, cases in FIXTURE["templates"].items() for i in range(len(cases))]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tok")
    write_tokenizer(folder, 128)
    return folder


def test_every_mergekit_name_is_known() -> None:
    assert sorted(FIXTURE["templates"]) == sorted(NAMED)
    assert FIXTURE["names"] == sorted(NAMED)  # mergekit's package data lists these and no other


@pytest.mark.parametrize("value", sorted(FIXTURE["verdicts"]))
def test_refused_exactly_where_mergekit_refuses(recipe_file: Callable[..., Path], value: str) -> None:
    text = f"merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {{weight: 1}}\nchat_template: {json.dumps(value)}\n"
    path = recipe_file(text)
    if FIXTURE["verdicts"][value] == "accepted":
        assert load_recipe(path).merge.chat_template == value
        return
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    line = e.value.line()
    assert "\n" not in line and f"unknown chat template '{value}'" in line
    assert "alpaca, chatml, exaone, llama3, mistral, auto, or a Jinja template" in line


@pytest.mark.parametrize(("name", "i"), CASES)
def test_renders_like_mergekit(tokenizer_dir: Path, name: str, i: int) -> None:
    case = FIXTURE["templates"][name][i]
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.chat_template = NAMED[name]
    text = tok.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=case["add_generation_prompt"])
    assert text == case["rendered"]


def test_mistral_refuses_non_alternating_roles(tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.chat_template = NAMED["mistral"]
    with pytest.raises(Exception, match="alternate"):
        tok.apply_chat_template([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], tokenize=False)


def test_auto_is_the_most_common_parent_template(tmp_path: Path) -> None:
    folders = []
    for i, template in enumerate(["{{ 'x' }}", "{{ 'y' }} ", "{{ 'y' }}", None]):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        cfg = {"chat_template": template} if template else {}
        (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
        folders.append(folder)
    assert resolve_template("auto", folders) == "{{ 'y' }}"
    assert resolve_template("auto", folders[3:]) is None
    assert resolve_template("chatml", folders) == NAMED["chatml"]
    inline = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert resolve_template(inline, folders) == inline


def test_unknown_name_is_refused_like_mergekit(recipe_file: Callable[..., Path]) -> None:
    text = "merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {weight: 1}\nchat_template: chatlm\n"
    with pytest.raises(RecipeError, match=r":5: chat_template: unknown chat template 'chatlm' .*did you mean 'chatml'"):
        load_recipe(recipe_file(text))


def test_build_writes_the_named_template(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    from publisher.build import BuildOptions, build

    text = "merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {weight: 1}\n  - model: {b}\n    parameters: {weight: 1}\nchat_template: llama3\n"
    out = tmp_path / "out"
    build(recipe_file(text, **family), out, BuildOptions(threads=1, quiet=True, render_cards=False))
    tok = AutoTokenizer.from_pretrained(out)
    case = FIXTURE["templates"]["llama3"][1]
    assert tok.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=True) == case["rendered"]
    assert json.loads((out / "tokenizer_config.json").read_text())["chat_template"] == NAMED["llama3"]
