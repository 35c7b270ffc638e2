"""Fixtures for the card tests; the builders live in cardkit.py."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# The suite runs with --import-mode=importlib: make the card test kit importable by name.
sys.path.insert(0, str(Path(__file__).parent))
from cardkit import HUB, RECIPES, make_build_dir


@pytest.fixture
def make_build(tmp_path: Path) -> Callable[..., Path]:
    counter = {"n": 0}

    def make(recipe: str | Path, **kw: object) -> Path:
        counter["n"] += 1
        path = RECIPES / recipe if isinstance(recipe, str) else recipe
        return make_build_dir(tmp_path / f"build{counter['n']}", path, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def hub_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture Hub folder (tests add or change parent cards in it)."""
    dst = tmp_path / "hub"
    shutil.copytree(HUB, dst)
    return dst


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub reach our local server although the suite runs with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
