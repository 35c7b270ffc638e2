"""Fixtures for release tests: a git repository of recipes and templates, a live local Hub
with stand-in parents, and helpers to edit, commit and release."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import git
import pytest
from huggingface_hub import HfApi, constants

from publisher.build import BuildOptions
from publisher.card.templates import TEMPLATES_DIR
from publisher.demo import generate_standin, seed_standins
from publisher.hub.server import LocalHub
from publisher.release import ReleaseOptions, Row, run_release

constants.HF_HUB_DISABLE_XET = True

STANDINS = ["acme/base-a", "acme/base-b"]

PARENT = """\
name: acme/parent
version: 1.0.0
merge:
  slices:
    - sources:
        - model: acme/base-a
          layer_range: [0, 32]
        - model: acme/base-b
          layer_range: [0, 32]
  merge_method: slerp
  base_model: acme/base-a
  parameters:
    t: {t}
  dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
card:
  license: apache-2.0
  summary: {summary}
"""

CHILD = """\
name: acme/child
version: {version}
merge:
  models:
    - model: acme/parent
      parameters:
        weight: 0.5
    - model: acme/base-a
      parameters:
        weight: 0.5
  merge_method: linear
  dtype: bfloat16
card:
  license: apache-2.0
  summary: A merge of a merge.
"""


def parent_recipe(t: float = 0.3, summary: str = "A parent merge.", version: str = "1.0.0") -> str:
    return PARENT.format(t=t, summary=summary).replace("version: 1.0.0", f"version: {version}")


def child_recipe(version: str = "1.0.0") -> str:
    return CHILD.format(version=version)


@dataclass
class Catalog:
    """A catalog repository (recipes/ + templates/, committed with git) and its local Hub."""

    root: Path
    repo: git.Repo
    url: str
    token: str
    hub_root: Path
    builds: Path
    logs: list[str] = field(default_factory=list)

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def template(self) -> Path:
        return self.root / "templates" / "card" / "default.md.j2"

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def commit(self, message: str) -> str:
        self.repo.git.add(A=True)
        self.repo.index.commit(message)
        return self.repo.head.commit.hexsha

    def options(self, **kw: Any) -> ReleaseOptions:
        kw.setdefault("builds_dir", self.builds)
        return ReleaseOptions(endpoint=self.url, token=self.token, build=BuildOptions(quiet=True, threads=2), **kw)

    def release(self, since: str | None = None, **kw: Any) -> list[Row]:
        return run_release(self.recipes, since=since, options=self.options(**kw), log=self.logs.append)

    def api(self) -> HfApi:
        return HfApi(endpoint=self.url, token=self.token)

    def state(self) -> dict[str, tuple[str | None, dict[str, str]]]:
        """Every repo on the server: main's head and the tags (what a release may change)."""
        api = self.api()
        out = {}
        for m in api.list_models():
            refs = api.list_repo_refs(m.id)
            main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
            out[m.id] = (main, {t.name: t.target_commit for t in refs.tags})
        return out

    def lfs_objects(self) -> set[str]:
        """The server's LFS object store: a weight upload adds to it."""
        return {p.name for p in (self.hub_root / "lfs" / "objects").rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def _online_for_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The suite runs with HF_HUB_OFFLINE=1; these tests talk to a server on 127.0.0.1 and
    keep every huggingface_hub download in the test's folder."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("PUBLISHER_HF_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("standins")
    for repo_id in STANDINS:
        generate_standin(repo_id, root)
    return root


@pytest.fixture
def make_catalog(tmp_path: Path, standin_dir: Path) -> Iterator[Callable[..., Catalog]]:
    """``make_catalog(recipes={rel: text})``: the repository committed once, the Hub seeded."""
    hubs: list[LocalHub] = []

    def make(recipes: dict[str, str] | None = None) -> Catalog:
        root = tmp_path / "catalog"
        (root / "templates" / "card").mkdir(parents=True)
        shutil.copy(TEMPLATES_DIR / "card" / "default.md.j2", root / "templates" / "card" / "default.md.j2")
        for rel, text in (recipes or {"recipes/parent.yaml": parent_recipe(), "recipes/child.yaml": child_recipe()}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        repo = git.Repo.init(root)
        with repo.config_writer() as cw:
            cw.set_value("user", "name", "test")
            cw.set_value("user", "email", "test@example.com")
        hub = LocalHub(tmp_path / "hub")
        hub.start()
        hubs.append(hub)
        token = hub.create_token("alice", "write", orgs=("acme",))
        seed_standins(hub.url, token, STANDINS, standin_dir)
        cat = Catalog(root, repo, hub.url, token, tmp_path / "hub", tmp_path / "builds")
        cat.commit("recipes")
        return cat

    yield make
    for hub in hubs:
        hub.stop()
