"""Fixtures for the catalog tests: the seed catalog as local builds, and real builds published to a local Hub.

``seed_builds``: the five seed recipes as 7B build directories (real safetensors headers over
sparse files, cards rendered by the card stage with the fixture parents' cards), the
catalog the seed pages show. ``published``: two seed recipes really built from stand-in
parents, published with ``publisher.hub.publish`` to a LocalHub (one of them twice, as
1.0.0 and 1.1.0), the parents' cards uploaded with HfApi so the lineage is read over HTTP.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

# The suite runs with --import-mode=importlib: make the kits importable by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "card"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cardkit import HUB, RECIPES, make_build_dir
from catalogkit import PUBLISHED_PARENTS, PUBLISHED_RECIPES, REPO_RECIPES, Published, standins

from publisher.build import BuildOptions, build
from publisher.card.fetchers import FolderFetcher
from publisher.card.render import render_cards
from publisher.catalog import CatalogResult, build_catalog
from publisher.hub.publish import publish
from publisher.hub.remote import client_settings
from publisher.hub.server import LocalHub


@pytest.fixture(scope="session")
def seed_builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed-builds")
    for recipe in sorted(RECIPES.glob("*.yaml")):
        out = make_build_dir(root / recipe.stem, recipe)
        render_cards(out, fetcher=FolderFetcher(HUB), recipes_dir=RECIPES)
    return root


@pytest.fixture(scope="session")
def seed_site(seed_builds: Path, tmp_path_factory: pytest.TempPathFactory) -> CatalogResult:
    return build_catalog(tmp_path_factory.mktemp("seed-site") / "site", builds=seed_builds, cards_dir=HUB)


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    from huggingface_hub import HfApi

    root = tmp_path_factory.mktemp("published")
    builds: dict[str, Path] = {}
    first: dict[str, Path] = {}
    with LocalHub(root / "hub") as hub:
        parents = list(PUBLISHED_PARENTS)
        orgs = tuple(sorted({p.split("/")[0] for p in parents} | {"MatthieuJ", "EmbeddedLLM"}))
        token = hub.create_token("curator", "write", orgs=orgs)
        api = HfApi(endpoint=hub.url, token=token)
        with client_settings(hub.url):
            for repo in parents:
                api.create_repo(repo, exist_ok=True)
                api.upload_file(path_or_fileobj=HUB / repo / "README.md", path_in_repo="README.md", repo_id=repo)
        for stem in PUBLISHED_RECIPES:
            recipe = REPO_RECIPES / f"{stem}.yaml"
            stand_ins = standins(recipe, root / "parents")
            out = build(recipe, root / "builds" / stem, BuildOptions(quiet=True), recipe_outputs=stand_ins).out
            publish(out, endpoint=hub.url, token=token)
            repo_id = recipe.read_text().split("\nname: ", 1)[1].split("\n", 1)[0].strip()
            builds[repo_id] = out
        # a second version of one model: the catalog lists both, newest first
        recipe = REPO_RECIPES / "ING_2003M3_SLERP.yaml"
        bumped = root / "ING_2003M3_SLERP-1.1.0.yaml"
        bumped.write_text(recipe.read_text().replace("version: 1.0.0", "version: 1.1.0"))
        stand_ins = standins(bumped, root / "parents")
        out = build(bumped, root / "builds" / "ING_2003M3_SLERP-1.1.0", BuildOptions(quiet=True), recipe_outputs=stand_ins).out
        publish(out, endpoint=hub.url, token=token)
        first["MatthieuJ/ING_2003M3_SLERP"] = builds["MatthieuJ/ING_2003M3_SLERP"]
        builds["MatthieuJ/ING_2003M3_SLERP"] = out
        yield Published(hub, hub.url, token, builds, first, parents)


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that call huggingface_hub directly against the loopback server."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
