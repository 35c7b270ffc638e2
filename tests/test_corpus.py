"""Issue 11's promise on a corpus of our own (tests/corpus/, configs in the shapes published
cards use, none copied): every one plans (multi-document files build), warnings instead of
refusals for what has no effect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.build import BuildOptions, build
from publisher.standins import TINY
from publisher.standins_lora import generate_lora
from publisher.standins_vocab import generate_vocab_family

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.yaml"))


@pytest.fixture(scope="module")
def parents(family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus-parents")
    return {**family, **generate_vocab_family(root), "lora": generate_lora(root / "lora", TINY, seed=11)}


@pytest.mark.parametrize("config", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_config_runs(config: Path, parents: dict[str, Path], recipe_file: Callable[..., Path], cli: Callable[..., object], tmp_path: Path) -> None:
    path = recipe_file(config.read_text(), config.name, **parents)
    if "\n---\n" in config.read_text():
        build(path, tmp_path / "out", BuildOptions(threads=1, quiet=True, render_cards=False))
        assert (tmp_path / "out" / "model.safetensors").is_file()
        return
    res = cli("plan", path, "--json")
    assert res.code == 0, res.err  # type: ignore[attr-defined]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 10
