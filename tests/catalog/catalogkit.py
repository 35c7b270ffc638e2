"""Shared constants and helpers of the catalog tests."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from publisher.demo import generate_standin
from publisher.hub.server import LocalHub
from publisher.recipe import load_recipe, model_references

ROOT = Path(__file__).resolve().parents[2]
REPO_RECIPES = ROOT / "recipes"
ARTIFACTS = ROOT / "test-artifacts"
PUBLISHED_RECIPES = ("ING_2003M3_SLERP", "Mistral-7B-Merge-02-v0")
# the parents' cards uploaded beside them: their lineage is read over HTTP
PUBLISHED_PARENTS = (
    "Intel/neural-chat-7b-v3-3",
    "MatthieuJ/ING_2003M2_SLERP",
    "chihoonlee10/T3Q-DPO-Mistral-7B",
    "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mistral-7B-v0.1",
    "teknium/OpenHermes-2.5-Mistral-7B",
)
SEED_REPOS = (
    "MatthieuJ/ING_2003M3_SLERP",
    "Nitral-Archive/Lelanta-lake-7b",
    "EmbeddedLLM/Mistral-7B-Merge-02-v0",
    "osanseviero/mistral-instruct-slerp",
    "arcee-ai/saul-mistral-v0.2-7b-slerp",
)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass
class Published:
    hub: LocalHub
    url: str
    token: str
    builds: dict[str, Path]  # repo id of the merged model -> its latest build
    first_builds: dict[str, Path]  # builds of earlier versions
    parents: list[str]  # repos holding only a parent's card (no version tag)


def standins(recipe: Path, root: Path) -> dict[str, Path]:
    """A stand-in folder (the demo's) for every parent a recipe names, by repo id."""
    refs = model_references(load_recipe(recipe).merge)
    return {ref: generate_standin(ref, root) for ref in refs}


def chromium() -> str | None:
    """Debian's chromium (``apt-get install chromium``), or another one named by PUBLISHER_CHROMIUM."""
    for candidate in (os.environ.get("PUBLISHER_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
