"""Fixtures for the release gate: stand-ins with a character tokenizer (the evaluation text is
mostly known tokens), recipes over them, and helpers to break a build on purpose."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from publisher.standins import TINY, Recipe, generate_model, with_layers

SHAPE = with_layers(TINY, 4)  # small and fast; layers are what the streaming pass iterates


@pytest.fixture(scope="session")
def chars_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``a`` and ``b``: unrelated 4-layer Mistral stand-ins with a per-character tokenizer."""
    root = tmp_path_factory.mktemp("chars")
    return {
        name: generate_model(root / name, SHAPE, recipe=Recipe(seed=seed), tokenizer_kind="chars")
        for name, seed in (("a", 11), ("b", 12))
    }


def recipe_text(models: str, method: str = "linear", extra: str = "", params: str = "", base: str = "") -> str:
    return (
        "name: acme/gate-test\nversion: 1.0.0\nmerge:\n"
        f"  models: {models}\n  merge_method: {method}\n"
        + (f"  base_model: {base}\n" if base else "")
        + (f"  parameters: {params}\n" if params else "")
        + "  dtype: bfloat16\n"
        + extra
    )


def rewrite_tensors(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Load each shard, let ``change`` edit the tensors in place, save it back (same names)."""
    for shard in sorted(folder.glob("*.safetensors")):
        tensors = load_file(str(shard))
        change(tensors)
        save_file(tensors, str(shard), metadata={"format": "pt"})


def copy_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def make_bigram(out: Path, seed: int, rank: int = 16) -> Path:
    """A stand-in that actually predicts the evaluation text: its embedding and head are a
    rank-16 factorisation of the text's character bigram log-probabilities, so its perplexity
    is far below uniform (and a scrambled layer shows)."""
    from publisher.check.evaltext import topics_text
    from publisher.standins import CHARS

    generate_model(out, SHAPE, recipe=Recipe(seed=seed), tokenizer_kind="chars")
    ids = [3 + CHARS.index(c) if c in CHARS else 0 for c in topics_text()[:200_000]]
    counts = torch.full((SHAPE.vocab, SHAPE.vocab), 0.05)
    pairs = torch.tensor(list(itertools.pairwise(ids)))
    counts.index_put_((pairs[:, 0], pairs[:, 1]), torch.ones(len(pairs)), accumulate=True)
    logp = (counts / counts.sum(dim=1, keepdim=True)).log()
    logp = logp - logp.mean(dim=1, keepdim=True)
    u, s, vh = torch.linalg.svd(logp)
    root = s[:rank].sqrt()
    embed = u[:, :rank] * root
    embed = embed / embed.norm(dim=1, keepdim=True).clamp(min=1e-6) * 4.0  # RMS 1 after the norm
    head = (vh[:rank].T * root) / 4.0 * (embed.norm(dim=1).mean() / 4.0)

    def install(t: dict[str, torch.Tensor]) -> None:
        if "model.embed_tokens.weight" in t:
            t["model.embed_tokens.weight"] = embed.to(torch.bfloat16).contiguous()
        if "lm_head.weight" in t:
            t["lm_head.weight"] = head.to(torch.bfloat16).contiguous()

    rewrite_tensors(out, install)
    return out


@pytest.fixture(scope="session")
def bigram_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bigram")
    return {name: make_bigram(root / name, seed) for name, seed in (("a", 21), ("b", 22))}
