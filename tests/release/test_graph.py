"""The recipe graph: edges to sibling recipes, dependency waves, cycles, the Actions matrix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.errors import RecipeError
from publisher.release import Decision, dependents, load_catalog, matrix, parents_key, waves


def linear(name: str, *parents: str, version: str = "1.0.0") -> str:
    models = "".join(f"    - model: {p}\n      parameters: {{weight: 0.5}}\n" for p in parents)
    return f"name: {name}\nversion: {version}\nmerge:\n  models:\n{models}  merge_method: linear\n  dtype: bfloat16\n"


def write(folder: Path, recipes: dict[str, str]) -> Path:
    for rel, text in recipes.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


DIAMOND = {
    "a.yaml": linear("org/a", "ext/x", "ext/y"),
    "b.yaml": linear("org/b", "org/a", "ext/y"),
    "c.yaml": linear("org/c", "org/a", "org/b"),
    "nested/d.yaml": linear("org/d", "ext/x", "ext/z@abc123"),
    "e.yaml": linear("org/e", "org/c", "org/d"),
}


def test_edges_waves_and_dependents(tmp_path: Path) -> None:
    nodes = load_catalog(write(tmp_path, DIAMOND))
    assert nodes["org/c"].parents == ["org/a", "org/b"]
    assert nodes["org/d"].externals == ["ext/x", "ext/z@abc123"]  # recipes in sub-folders count
    assert waves(nodes) == [["org/a", "org/d"], ["org/b"], ["org/c"], ["org/e"]]
    assert dependents(nodes, "org/a") == {"org/b", "org/c", "org/e"}
    assert dependents(nodes, "org/e") == set()


def test_a_cycle_is_an_error_naming_it(tmp_path: Path, cli: Callable[..., object]) -> None:
    folder = write(tmp_path / "r", {
        "a.yaml": linear("org/a", "org/c", "ext/x"),
        "b.yaml": linear("org/b", "org/a", "ext/x"),
        "c.yaml": linear("org/c", "org/b", "ext/x"),
        "free.yaml": linear("org/free", "ext/x", "ext/y"),
    })
    with pytest.raises(RecipeError, match=r"cycle: org/a -> org/c -> org/b -> org/a"):
        waves(load_catalog(folder))
    result = cli("release", folder, "--matrix")
    assert result.code == 2  # type: ignore[attr-defined]
    lines = result.err.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "cycle" in lines[0] and "a.yaml" in lines[0]


def test_recipes_need_unique_names_and_versions(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="two recipes publish org/a"):
        load_catalog(write(tmp_path / "dup", {"a.yaml": linear("org/a", "x/y", "x/z"), "b.yaml": linear("org/a", "x/y", "x/z")}))
    with pytest.raises(RecipeError, match="needs 'version'"):
        load_catalog(write(tmp_path / "nov", {"a.yaml": "name: org/a\n" + linear("org/a", "x/y", "x/z").split("\n", 2)[2]}))


def test_matrix_waves_skip_unchanged_and_pack_wide_waves(tmp_path: Path) -> None:
    nodes = load_catalog(write(tmp_path, DIAMOND))
    decisions = {n: Decision("build", "new") for n in nodes}
    decisions["org/b"] = Decision("skip", "unchanged")
    decisions["org/d"] = Decision("card", "template changed")
    m = matrix(nodes, decisions, tmp_path)
    assert m["waves"] == 3  # b's wave holds nothing to do: it is left out, the order kept
    assert [[e["names"] for e in m[f"wave{i}"]["include"]] for i in range(3)] == [["org/a", "org/d"], ["org/c"], ["org/e"]]
    a, d = m["wave0"]["include"]
    assert a == {
        "name": "org/a", "names": "org/a", "group": "org--a", "recipe": "a.yaml", "action": "build",
        "cache_key": parents_key(nodes, ["org/a"]),
    }
    assert d["action"] == "card" and d["recipe"] == "nested/d.yaml"
    assert m["authors"] == "org"
    json.dumps(m)  # it is what the workflow reads

    with pytest.raises(RecipeError, match=r"needs 3 dependency waves .* has 2 wave jobs"):
        matrix(nodes, decisions, tmp_path, max_waves=2)

    packed = matrix(nodes, {n: Decision("build", "new") for n in nodes}, tmp_path, max_jobs=1)
    (entry,) = packed["wave0"]["include"]
    assert entry["names"] == "org/a org/d" and entry["group"] == "pack-0-0" and entry["name"] == "org/a and 1 more"
    assert packed["jobs"] == 4


def test_parents_key_follows_parent_refs_and_versions(tmp_path: Path) -> None:
    nodes = load_catalog(write(tmp_path / "one", DIAMOND))
    changed = dict(DIAMOND, **{"a.yaml": linear("org/a", "ext/x", "ext/y", version="1.1.0")})
    bumped = load_catalog(write(tmp_path / "two", changed))
    assert parents_key(nodes, ["org/b"]) != parents_key(bumped, ["org/b"])  # its parent org/a moved on
    assert parents_key(nodes, ["org/d"]) == parents_key(bumped, ["org/d"])
