"""Change detection against a git ref (no Hub needed): what each recipe needs."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from publisher.errors import RecipeError
from publisher.release import decide, load_catalog
from tests.release.test_graph import linear

EVALS = '{"results": {"arc_challenge": {"acc_norm,none": 0.61}}}\n'


def repo_with(root: Path, files: dict[str, str]) -> git.Repo:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    repo = git.Repo.init(root)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "test")
        cw.set_value("user", "email", "test@example.com")
    repo.git.add(A=True)
    repo.index.commit("start")
    return repo


def decisions(root: Path, since: str = "HEAD") -> dict[str, tuple[str, str]]:
    nodes = load_catalog(root / "recipes")
    return {n: (d.action, d.reason) for n, d in decide(nodes, root / "recipes", since).items()}


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    card = "card:\n  evaluations: evals/a.json\n"
    custom = "card:\n  template: ../templates/mine.md.j2\n"
    repo_with(tmp_path, {
        "recipes/a.yaml": linear("org/a", "x/y", "x/z") + card,
        "recipes/evals/a.json": EVALS,
        "recipes/b.yaml": linear("org/b", "org/a", "x/z"),
        "recipes/c.yaml": linear("org/c", "x/y", "x/z") + custom,
        "templates/card/default.md.j2": "{% extends 'builtin/card/default.md.j2' %}\n",
        "templates/mine.md.j2": "{% extends 'card/default.md.j2' %}\n",
        "templates/catalog/index.html.j2": "<html></html>\n",
    })
    return tmp_path


def test_files_a_card_is_rendered_from(catalog: Path) -> None:
    (catalog / "recipes/evals/a.json").write_text(EVALS.replace("0.61", "0.62"))
    assert decisions(catalog) == {
        "org/a": ("card", "card template or evaluations changed"),
        "org/b": ("skip", "unchanged"),
        "org/c": ("skip", "unchanged"),
    }
    (catalog / "templates/mine.md.j2").write_text("{% extends 'card/default.md.j2' %}\n{# v2 #}\n")
    assert decisions(catalog)["org/c"] == ("card", "card template or evaluations changed")


def test_card_templates_touch_every_card_catalog_templates_none(catalog: Path) -> None:
    (catalog / "templates/catalog/index.html.j2").write_text("<html><body></body></html>\n")
    assert {a for a, _ in decisions(catalog).values()} == {"skip"}
    (catalog / "templates/card/default.md.j2").write_text("{% extends 'builtin/card/default.md.j2' %}\n\n")
    assert {n: a for n, (a, _) in decisions(catalog).items()} == {"org/a": "card", "org/b": "card", "org/c": "card"}


def test_new_recipes_bumps_and_dependents(catalog: Path) -> None:
    (catalog / "recipes/d.yaml").write_text(linear("org/d", "x/y", "x/z"))  # untracked: new
    (catalog / "recipes/a.yaml").write_text(
        (catalog / "recipes/a.yaml").read_text().replace("version: 1.0.0", "version: 1.0.1")
    )
    with pytest.raises(RecipeError, match=r"org/b merges org/a, which is rebuilt, but its version is still 1\.0\.0"):
        decisions(catalog)
    (catalog / "recipes/b.yaml").write_text(linear("org/b", "org/a", "x/z", version="1.0.1"))
    got = decisions(catalog)
    assert got["org/a"] == ("build", "version bumped (1.0.0 → 1.0.1)")
    assert got["org/b"] == ("build", "version bumped (1.0.0 → 1.0.1)")
    assert got["org/d"] == ("build", "new recipe")
    assert got["org/c"] == ("skip", "unchanged")


def test_unknown_ref_and_no_repository(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(RecipeError, match=r"unknown git ref 'nope'.*fetch-depth: 0"):
        decisions(catalog, "nope")
    bare = tmp_path_factory.mktemp("nogit")
    (bare / "recipes").mkdir()
    (bare / "recipes/a.yaml").write_text(linear("org/a", "x/y", "x/z"))
    with pytest.raises(RecipeError, match="not inside a git repository"):
        decide(load_catalog(bare / "recipes"), bare / "recipes", "HEAD")


def test_renamed_recipes_keep_their_history(catalog: Path) -> None:
    repo = git.Repo(catalog)
    repo.git.mv("recipes/c.yaml", "recipes/c-renamed.yaml")  # committed rename: git's -M sees it
    repo.index.commit("rename c")
    assert decisions(catalog, "HEAD~1")["org/c"] == ("skip", "renamed from recipes/c.yaml, unchanged")

    # moved by hand, not added to git, and edited: found by its name among the deleted files
    (catalog / "recipes/b.yaml").rename(catalog / "recipes/b2.yaml")
    text = (catalog / "recipes/b2.yaml").read_text()
    (catalog / "recipes/b2.yaml").write_text(text + "card:\n  summary: the same merge, a new card\n")
    assert decisions(catalog)["org/b"] == ("card", "renamed from recipes/b.yaml, same weights")

    # renamed with new weights: still a changed merge, so the version must move
    (catalog / "recipes/b2.yaml").write_text(text.replace("weight: 0.5", "weight: 0.7", 1))
    with pytest.raises(RecipeError, match=r"the merge changed since HEAD but version is still 1\.0\.0"):
        decisions(catalog)
    (catalog / "recipes/b2.yaml").write_text(text.replace("weight: 0.5", "weight: 0.7", 1).replace("1.0.0", "1.1.0"))
    assert decisions(catalog)["org/b"] == ("build", "renamed from recipes/b.yaml; recipe changed (1.0.0 → 1.1.0)")


def test_deleted_recipes_are_reported_and_never_built(catalog: Path, tmp_path: Path) -> None:
    from publisher.release import removed_recipes

    (catalog / "recipes/c.yaml").unlink()
    nodes = load_catalog(catalog / "recipes")
    assert "org/c" not in decide(nodes, catalog / "recipes", "HEAD")
    removed = removed_recipes(nodes, catalog / "recipes", "HEAD")
    assert list(removed) == ["org/c"]
    assert removed["org/c"].startswith("recipe recipes/c.yaml deleted since HEAD; its published versions stay on the Hub")
    assert removed_recipes(nodes, catalog / "recipes", None) == {}

    # a recipe whose file went away but whose name lives on elsewhere is not "removed"
    (catalog / "recipes/a.yaml").rename(catalog / "recipes/a-new.yaml")
    assert list(removed_recipes(load_catalog(catalog / "recipes"), catalog / "recipes", "HEAD")) == ["org/c"]
