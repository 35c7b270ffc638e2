"""``publisher release`` of a mergekit-multi file: one recipe of the catalog whose stage named
with a repo id is one of its outputs, published (same version and tag) before the final merge,
which merges exactly the stage's commit; a rerun publishes nothing; a changed stage rebuilds
that stage and the final (real command line, real huggingface_hub client, local Hub)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.multi_texts import fill, staged
from tests.release.conftest import Catalog

PARENTS = {"a": "acme/base-a", "b": "acme/base-b", "base": "acme/base-b"}
CHILD = """\
name: acme/grandchild
version: 1.0.0
merge:
  models:
    - model: acme/blend-ab
      parameters: {weight: 0.5}
    - model: acme/final
      parameters: {weight: 0.5}
  merge_method: linear
  dtype: bfloat16
card: {license: apache-2.0}
checks: {measure: false}
"""


def _multi(t: float = 0.3, version: str = "1.0.0") -> str:
    return fill(staged("acme/blend-ab", "acme/final", t=t, version=version), PARENTS)


def _release(cat: Catalog, cli: Callable[..., Any], *args: str) -> Any:
    result = cli("release", "recipes", "--endpoint", cat.url, "--builds", cat.builds, "--quiet", *args)
    assert result.code == 0, result.err
    return result


def _tags(cat: Catalog, repo: str) -> dict[str, str]:
    return {t.name: t.target_commit for t in cat.api().list_repo_refs(repo).tags}


def _manifest(cat: Catalog, repo: str, tag: str, tmp: Path) -> dict[str, Any]:
    path = cat.api().hf_hub_download(repo, "manifest.json", revision=tag, cache_dir=tmp)
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def _pin(manifest: dict[str, Any], repo: str) -> str | None:
    [entry] = [i for i in manifest["inputs"] if i["repo_id"] == repo]
    return entry["revision"]  # type: ignore[no-any-return]


def _weights(manifest: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in manifest["variants"][0]["files"] if f["path"].endswith(".safetensors")}


@pytest.fixture
def catalog(make_catalog: Callable[..., Catalog], monkeypatch: pytest.MonkeyPatch) -> Catalog:
    cat = make_catalog({"recipes/multi.yaml": _multi(), "recipes/grandchild.yaml": CHILD})
    monkeypatch.setenv("HF_TOKEN", cat.token)
    monkeypatch.chdir(cat.root)
    return cat


def test_release_publishes_the_stage_then_the_final_and_a_rerun_nothing(
    catalog: Catalog, cli: Callable[..., Any], tmp_path: Path
) -> None:
    cat = catalog
    out = _release(cat, cli).out
    assert "recipes/multi.yaml" in out and "acme/blend-ab" in out
    stage_commit = _tags(cat, "acme/blend-ab")["v1.0.0"]
    final = _manifest(cat, "acme/final", "v1.0.0", tmp_path / "c")
    assert _pin(final, "acme/blend-ab") == stage_commit  # the final merged the stage's published commit
    # a recipe of the catalog merging the stage repo and the final: released after them, pinned to both
    child = _manifest(cat, "acme/grandchild", "v1.0.0", tmp_path / "c")
    assert _pin(child, "acme/blend-ab") == stage_commit
    assert _pin(child, "acme/final") == _tags(cat, "acme/final")["v1.0.0"]

    state, objects = cat.state(), cat.lfs_objects()
    out = _release(cat, cli).out  # everything again: all published
    assert cat.state() == state and cat.lfs_objects() == objects
    assert "up to date" in out
    _release(cat, cli, "--builds", str(tmp_path / "fresh-runner"))  # no local builds: read from the Hub
    assert cat.state() == state and cat.lfs_objects() == objects
    cat.write("NOTES.txt", "not a recipe\n")
    cat.commit("unrelated")
    _release(cat, cli, "--changed-since", "HEAD~1")
    assert cat.state() == state


def test_a_changed_stage_rebuilds_the_stage_and_the_final(
    catalog: Catalog, cli: Callable[..., Any], tmp_path: Path
) -> None:
    cat = catalog
    _release(cat, cli)
    before = _manifest(cat, "acme/blend-ab", "v1.0.0", tmp_path / "c")

    cat.write("recipes/multi.yaml", _multi(t=0.6))  # the stage changed, the version did not
    cat.commit("stage t changed")
    result = cli("release", "recipes", "--endpoint", cat.url, "--builds", cat.builds, "--changed-since", "HEAD~1")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "multi.yaml" in result.err and "version is still 1.0.0" in result.err

    cat.write("recipes/multi.yaml", _multi(t=0.6, version="1.0.1"))
    cat.write("recipes/grandchild.yaml", CHILD.replace("version: 1.0.0", "version: 1.0.1"))
    cat.commit("stage t changed, bumped")
    out = _release(cat, cli, "--changed-since", "HEAD~2").out
    assert "recipe changed (1.0.0 → 1.0.1)" in " ".join(out.split())
    stage, final = _tags(cat, "acme/blend-ab"), _tags(cat, "acme/final")
    assert set(stage) == set(final) == {"v1.0.0", "v1.0.1"}
    after = _manifest(cat, "acme/blend-ab", "v1.0.1", tmp_path / "c")
    assert _weights(after) != _weights(before)  # the stage was rebuilt with the new t
    new_final = _manifest(cat, "acme/final", "v1.0.1", tmp_path / "c")
    assert _pin(new_final, "acme/blend-ab") == stage["v1.0.1"]
    assert _pin(_manifest(cat, "acme/grandchild", "v1.0.1", tmp_path / "c"), "acme/final") == final["v1.0.1"]
