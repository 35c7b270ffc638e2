"""``publisher release`` end to end: a git repository of recipes, the real huggingface_hub client
against the local Hub over HTTP, tiny stand-in parents, real builds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.errors import PublishError, RecipeError
from publisher.manifest import load_manifest
from tests.release.conftest import Catalog, child_recipe, parent_recipe

MARK = "Rendered with the catalog's own template."
REPOS = ["acme/child", "acme/parent", "acme/parent-FP8"]


def by_name(rows: list) -> dict[str, object]:  # type: ignore[type-arg]
    return {Path(r.recipe).stem: r for r in rows}


def tree(cat: Catalog, repo: str, revision: str) -> dict[str, str]:
    return {f.path: f.blob_id for f in cat.api().list_repo_tree(repo, revision=revision, recursive=True) if hasattr(f, "blob_id")}


def readme(cat: Catalog, repo: str, revision: str = "main") -> str:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, "README.md", revision=revision, endpoint=cat.url, token=cat.token)).read_text()


def input_revision(build: Path, repo_id: str) -> str | None:
    return next(i.revision for i in load_manifest(build).inputs if i.repo_id == repo_id)


def test_child_merges_the_commit_its_parent_just_published(make_catalog: Callable[..., Catalog]) -> None:
    cat = make_catalog()
    first = cat.repo.head.commit.hexsha
    rows = by_name(cat.release())
    assert [r.action for r in rows.values()] == ["published", "published"]  # type: ignore[attr-defined]
    api = cat.api()
    refs = {r: {t.name: t.target_commit for t in api.list_repo_refs(r).tags} for r in REPOS}
    p1 = refs["acme/parent"]["v1.0.0"]
    assert rows["parent"].commit == p1  # type: ignore[attr-defined]
    assert input_revision(cat.builds / "acme--child" / "1.0.0", "acme/parent") == p1
    assert "acme/parent" in readme(cat, "acme/child")  # its lineage names the parent
    assert refs["acme/parent-FP8"]["v1.0.0"] and refs["acme/child"]["v1.0.0"]

    # The parent's merge changes (a new version); the child must follow with a bump of its own.
    cat.write("recipes/parent.yaml", parent_recipe(t=0.6, version="1.1.0"))
    cat.commit("parent 1.1.0")
    with pytest.raises(RecipeError, match=r"acme/child merges acme/parent, which is rebuilt, but its version is still 1\.0\.0"):
        cat.release(since=first)
    cat.write("recipes/child.yaml", child_recipe(version="1.1.0"))
    cat.commit("child 1.1.0")
    rows = by_name(cat.release(since=first))
    assert [(r.version, r.action) for r in rows.values()] == [("1.1.0", "published")] * 2  # type: ignore[attr-defined]
    p2 = api.list_repo_refs("acme/parent")
    tags = {t.name: t.target_commit for t in p2.tags}
    assert set(tags) == {"v1.0.0", "v1.1.0"} and tags["v1.0.0"] == p1  # the old tag never moves
    assert input_revision(cat.builds / "acme--child" / "1.1.0", "acme/parent") == tags["v1.1.0"] != p1
    assert rows["child"].reason == "version bumped (1.0.0 → 1.1.0)"  # type: ignore[attr-defined]


def test_merge_changed_without_a_bump_is_a_one_line_error(
    make_catalog: Callable[..., Catalog], cli: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    cat = make_catalog()
    cat.write("recipes/parent.yaml", parent_recipe(t=0.7))
    cat.commit("t changed, version not")
    capsys.readouterr()  # the fixture's uploads of the stand-ins may have drawn progress bars
    result = cli("release", cat.recipes, "--changed-since", "HEAD~1", "--endpoint", cat.url)
    assert result.code == 2  # type: ignore[attr-defined]
    lines = result.err.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.err  # type: ignore[attr-defined]
    (line,) = lines
    assert "parent.yaml:1" in line and "the merge changed since HEAD~1 but version is still 1.0.0" in line
    assert "bump version (e.g. to 1.0.1)" in line
    assert cat.state().keys() == {"acme/base-a", "acme/base-b"}  # nothing was built or published


def test_template_change_republishes_only_the_cards(make_catalog: Callable[..., Catalog], tmp_path: Path) -> None:
    cat = make_catalog()
    cat.release()
    before, objects = cat.state(), cat.lfs_objects()
    cat.write("templates/card/default.md.j2", cat.template.read_text() + f"\n{MARK}\n")
    cat.commit("card template")

    fresh = tmp_path / "fresh-runner-builds"  # as on a CI runner: no local build to start from
    rows = cat.release(since="HEAD~1", builds_dir=fresh)
    assert {r.action for r in rows} == {"card updated"}
    assert not fresh.exists()  # no weights were rebuilt or downloaded
    after = cat.state()
    for repo in REPOS:
        old_main, old_tags = before[repo]
        new_main, new_tags = after[repo]
        assert new_tags == old_tags and new_main != old_main  # a new commit on main; v1.0.0 stays
        commit = cat.api().list_repo_commits(repo)[0]
        assert commit.commit_id == new_main and commit.title == "Update model card (v1.0.0)"
        old, new = tree(cat, repo, old_main), tree(cat, repo, new_main)
        assert {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)} == {"README.md"}
        assert MARK in readme(cat, repo) and MARK not in readme(cat, repo, "v1.0.0")
    assert cat.lfs_objects() == objects  # no weight file was uploaded

    again = cat.release(since="HEAD~1", builds_dir=fresh)
    assert {r.action for r in again} == {"up to date"} and cat.state() == after


def test_card_text_change_without_a_bump_is_a_card_only_release(make_catalog: Callable[..., Catalog]) -> None:
    cat = make_catalog()
    cat.release()
    before, objects = cat.state(), cat.lfs_objects()
    cat.write("recipes/parent.yaml", parent_recipe(summary="A better description."))
    cat.commit("card text")
    rows = by_name(cat.release(since="HEAD~1"))  # the local builds are the ones published
    assert rows["parent"].action == "card updated" and rows["child"].action == "unchanged"  # type: ignore[attr-defined]
    assert "A better description." in readme(cat, "acme/parent")
    assert "A better description." in readme(cat, "acme/parent-FP8")
    assert cat.state()["acme/child"] == before["acme/child"]
    assert cat.lfs_objects() == objects


def test_unchanged_recipes_are_skipped_and_a_full_rerun_changes_nothing(make_catalog: Callable[..., Catalog], tmp_path: Path) -> None:
    cat = make_catalog()
    cat.release()
    state = cat.state()
    cat.write("NOTES.txt", "not a recipe\n")
    cat.commit("unrelated")
    rows = cat.release(since="HEAD~1")
    assert [(r.action, r.commit) for r in rows] == [("unchanged", None)] * 2
    rows = cat.release(builds_dir=tmp_path / "elsewhere")  # everything, from a fresh runner
    assert {r.action for r in rows} == {"up to date"}
    assert cat.state() == state


def test_a_published_version_is_never_rebuilt_with_other_weights(make_catalog: Callable[..., Catalog], tmp_path: Path) -> None:
    cat = make_catalog()
    cat.release()
    cat.write("recipes/parent.yaml", parent_recipe(t=0.9))
    cat.commit("t changed, version not")
    with pytest.raises(RecipeError, match=r"acme/parent v1\.0\.0 is already published with other weights"):
        cat.release(builds_dir=tmp_path / "fresh")  # no --changed-since: the Hub's copy is compared


def test_a_child_needs_its_parent_published(make_catalog: Callable[..., Catalog]) -> None:
    cat = make_catalog()
    with pytest.raises(PublishError, match=r"acme/child merges acme/parent, whose v1\.0\.0 is not published"):
        cat.release(only=["acme/child"])


def test_dry_run_touches_nothing_and_prints_the_table(
    make_catalog: Callable[..., Catalog], cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = make_catalog()
    cat.release()
    cat.write("templates/card/default.md.j2", cat.template.read_text() + f"\n{MARK}\n")
    cat.write("recipes/solo.yaml", parent_recipe().replace("acme/parent", "acme/solo"))
    cat.commit("template and a new recipe")
    before, objects = cat.state(), cat.lfs_objects()
    builds = sorted(p.relative_to(cat.builds) for p in cat.builds.rglob("*"))
    monkeypatch.setenv("HF_TOKEN", cat.token)
    monkeypatch.chdir(cat.root)
    result = cli("release", "recipes", "--dry-run", "--changed-since", "HEAD~1", "--endpoint", cat.url, "--builds", cat.builds)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    out = result.out  # type: ignore[attr-defined]
    header = next(line for line in out.splitlines() if "recipe" in line and "commit" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["recipe", "version", "action", "repo", "commit", "time"]
    lines = {name: next(line for line in out.splitlines() if f"recipes/{name}.yaml" in line and "│" in line)
             for name in ("parent", "child", "solo")}
    assert "would update card" in lines["parent"] and "acme/parent " in lines["parent"]
    assert "would update card" in lines["child"]
    assert "would build and publish" in lines["solo"]
    assert cat.state() == before and cat.lfs_objects() == objects
    assert sorted(p.relative_to(cat.builds) for p in cat.builds.rglob("*")) == builds


def test_matrix_lists_the_changed_recipes_in_dependency_waves(
    make_catalog: Callable[..., Catalog], cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = make_catalog()
    monkeypatch.chdir(cat.root)
    cat.write("recipes/parent.yaml", parent_recipe(t=0.6, version="1.1.0"))
    cat.write("recipes/child.yaml", child_recipe(version="1.1.0"))
    cat.commit("both bumped")
    result = cli("release", "recipes", "--matrix", "--changed-since", "HEAD~1")
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    m = json.loads(result.out)  # type: ignore[attr-defined]
    assert m["waves"] == 2 and m["jobs"] == 2 and m["authors"] == "acme"
    assert [(e["names"], e["recipe"], e["action"]) for e in m["wave0"]["include"]] == [("acme/parent", "recipes/parent.yaml", "build")]
    assert [(e["names"], e["action"]) for e in m["wave1"]["include"]] == [("acme/child", "build")]

    too_deep = cli("release", "recipes", "--matrix", "--changed-since", "HEAD~1", "--max-waves", "1")
    assert too_deep.code == 2 and "needs 2 dependency waves" in too_deep.err  # type: ignore[attr-defined]

    cat.write("templates/card/default.md.j2", cat.template.read_text() + "\n")
    cat.commit("template")
    m = json.loads(cli("release", "recipes", "--matrix", "--changed-since", "HEAD~1").out)  # type: ignore[attr-defined]
    assert [[(e["names"], e["action"]) for e in m[f"wave{i}"]["include"]] for i in range(m["waves"])] == [
        [("acme/parent", "card")], [("acme/child", "card")]
    ]
    assert json.loads(cli("release", "recipes", "--matrix", "--changed-since", "HEAD").out)["waves"] == 0  # type: ignore[attr-defined]


def test_a_release_stopped_half_way_is_finished_from_its_build(make_catalog: Callable[..., Catalog], tmp_path: Path) -> None:
    cat = make_catalog({"recipes/parent.yaml": parent_recipe()})
    cat.release()
    cat.api().delete_tag("acme/parent-FP8", tag="v1.0.0")  # as if the run died before tagging the variant
    with pytest.raises(PublishError, match=r"acme/parent-FP8 has no tag v1\.0\.0 \(an earlier release stopped half-way\)"):
        cat.release(builds_dir=tmp_path / "fresh")  # a header-only copy is never published as a model
    (row,) = cat.release()  # the build that was published is still here: it completes the release
    assert row.action == "tagged, up to date"
    assert "v1.0.0" in {t.name for t in cat.api().list_repo_refs("acme/parent-FP8").tags}


def test_a_deleted_recipe_is_reported_and_its_repos_left_alone(
    make_catalog: Callable[..., Catalog], cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = make_catalog()
    cat.release()
    (cat.root / "recipes" / "child.yaml").unlink()
    cat.commit("retire the child")
    before = cat.state()
    monkeypatch.setenv("HF_TOKEN", cat.token)
    monkeypatch.chdir(cat.root)
    result = cli("release", "recipes", "--changed-since", "HEAD~1", "--endpoint", cat.url, "--builds", cat.builds)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    out = " ".join(result.out.split())  # type: ignore[attr-defined]
    assert ("acme/child: removed (recipe recipes/child.yaml deleted since HEAD~1; "
            "its published versions stay on the Hub") in out
    assert cat.state() == before
