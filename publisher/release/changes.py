"""Change detection with gitpython: what each recipe needs since a git ref."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from publisher.errors import PublisherError, RecipeError
from publisher.recipe import Recipe
from publisher.release.graph import Node, dependents

Action = Literal["build", "card", "skip"]
# Sections whose change changes the weights (and so needs a new version).
WEIGHT_SECTIONS = ("merge", "quantize", "seed", "compute_dtype")
CARD_TEMPLATES = "card"  # the subfolder of a catalog's templates/ that cards are rendered from


@dataclass
class Decision:
    action: Action
    reason: str


def default_templates_dir(recipes_dir: Path) -> Path | None:
    """The catalog's templates folder: ``templates/`` beside the recipes folder, if there is one."""
    candidate = Path(recipes_dir).resolve().parent / "templates"
    return candidate if candidate.is_dir() else None


def weights(recipe: Recipe) -> dict[str, Any]:
    data = recipe.model_dump(mode="json")
    return {k: data.get(k) for k in WEIGHT_SECTIONS}


def file_weights(recipes: list[Recipe]) -> list[dict[str, Any]]:
    """What makes a file's weights: each document's weight sections, a stage's version too
    (a multi-document file's stages come first, the final last)."""
    return [{**weights(r), "name": r.name, "version": r.version} for r in recipes[:-1]] + [weights(recipes[-1])]


@dataclass
class TreeChanges:
    """What git says changed since a ref: every touched path, renames (new → old) and deletions."""

    changed: set[Path]
    renamed_from: dict[Path, Path]
    deleted: set[Path]


def tree_changes(repo: Any, since: str) -> TreeChanges:
    root = Path(repo.working_tree_dir or ".").resolve()
    changed: set[Path] = set()
    renamed_from: dict[Path, Path] = {}
    deleted: set[Path] = set()
    for line in repo.git.diff("--name-status", "-M", since, "--").splitlines():
        status, *paths = line.split("\t")
        if not paths:
            continue
        if status.startswith("R") and len(paths) == 2:
            old, new = (root / paths[0]).resolve(), (root / paths[1]).resolve()
            renamed_from[new] = old
            changed |= {old, new}
            continue
        path = (root / paths[-1]).resolve()
        changed.add(path)
        if status.startswith("D"):
            deleted.add(path)
    changed |= {(root / p).resolve() for p in repo.untracked_files}
    return TreeChanges(changed, renamed_from, deleted)


def removed_recipes(nodes: dict[str, Node], recipes_dir: Path, since: str | None) -> dict[str, str]:
    """Recipes deleted since ``since`` (by name, with the reason the release reports). Their
    published versions stay on the Hub: a release never deletes a repo."""
    if since is None:
        return {}
    repo = _open_repo(recipes_dir, since)
    root = Path(repo.working_tree_dir or ".").resolve()
    out: dict[str, str] = {}
    for path in sorted(tree_changes(repo, since).deleted):
        if path.suffix not in (".yaml", ".yml") or Path(recipes_dir).resolve() not in path.parents:
            continue
        old = _old_recipe(repo, since, path)
        if old is None or not old.name or old.name in nodes:
            continue  # not a recipe then, or its name lives on in another file
        out[old.name] = (f"recipe {path.relative_to(root).as_posix()} deleted since {since}; "
                         "its published versions stay on the Hub (delete the repos there if intended)")
    return out


def _open_repo(recipes_dir: Path, since: str) -> Any:
    import git

    try:
        repo = git.Repo(recipes_dir, search_parent_directories=True)
        repo.commit(since)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        raise RecipeError("not inside a git repository", where=str(recipes_dir), fix="drop --changed-since") from e
    except (git.BadName, ValueError) as e:
        raise RecipeError(
            f"unknown git ref '{since}'",
            where=str(recipes_dir),
            fix="fetch enough history (fetch-depth: 0) or pass another ref",
        ) from e
    return repo


def _old_recipe(repo: Any, ref: str, path: Path) -> Recipe | None:
    """The recipe as it was at ``ref`` (None if the file did not exist then or does not load)."""
    old = _old_recipes(repo, ref, path)
    return old[-1] if old else None


def _old_recipes(repo: Any, ref: str, path: Path) -> list[Recipe] | None:
    """Every document's recipe as it was at ``ref``, the final last (one for an ordinary file)."""
    import git

    from publisher.multi_documents import load_file_recipes

    rel = path.resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    try:
        text = repo.git.show(f"{ref}:{rel}", stdout_as_string=False)
    except git.GitCommandError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / path.name
        old.write_bytes(text if isinstance(text, bytes) else str(text).encode())
        try:
            return load_file_recipes(old).recipes
        except PublisherError:
            return None


def decide(
    nodes: dict[str, Node], recipes_dir: Path, since: str | None, templates_dir: Path | None = None
) -> dict[str, Decision]:
    """What each recipe needs, comparing the working tree with git ``since``."""
    if since is None:
        return {n: Decision("build", "full release") for n in nodes}
    repo = _open_repo(recipes_dir, since)
    root = Path(repo.working_tree_dir or ".").resolve()
    tree = tree_changes(repo, since)
    changed = tree.changed
    templates = (templates_dir or default_templates_dir(recipes_dir) or root / "templates").resolve()
    card_templates = templates / CARD_TEMPLATES
    template_changed = any(card_templates in p.parents for p in changed)
    out: dict[str, Decision] = {}
    for name, node in nodes.items():
        path = node.path.resolve()
        if path in changed:
            was = tree.renamed_from.get(path, path)
            olds = _old_recipes(repo, since, was)
            if olds is None or olds[-1].name != node.name:
                # a recipe moved to a new file (with edits git does not call a rename)
                was, olds = _same_name_at(repo, since, tree.deleted, node.name) or (was, olds)
            old = olds[-1] if olds else None
            moved = f"renamed from {was.relative_to(root).as_posix()}" if was != path and old is not None else ""
            new = node.loaded.recipe
            same_weights = olds is not None and file_weights(olds) == file_weights(node.recipes)
            if old is None or olds is None:
                out[name] = Decision("build", "new recipe")
            elif moved and same_weights and old.version == new.version:
                same_card = [r.model_dump(mode="json") for r in olds] == [r.model_dump(mode="json") for r in node.recipes]
                out[name] = Decision("skip", f"{moved}, unchanged") if same_card else Decision("card", f"{moved}, same weights")
            elif not same_weights:
                if old.version == new.version:
                    raise RecipeError(
                        f"the merge changed since {since} but version is still {new.version}",
                        where=f"{node.path}:1",
                        fix=f"bump version (e.g. to {bump(new.version or '0.0.0')}): a published tag never moves",
                    )
                out[name] = Decision("build", _with(moved, f"recipe changed ({old.version} → {new.version})"))
            elif old.version != new.version:
                out[name] = Decision("build", _with(moved, f"version bumped ({old.version} → {new.version})"))
            else:
                out[name] = Decision("card", "recipe edited, same weights")
        elif node.card_inputs() & changed:
            out[name] = Decision("card", "card template or evaluations changed")
        elif template_changed:
            out[name] = Decision("card", "template changed")
        else:
            out[name] = Decision("skip", "unchanged")
    # A rebuilt parent means new weights for each dependent: rebuild them too (with a bump).
    for name in [n for n, d in out.items() if d.action == "build"]:
        for dep in sorted(dependents(nodes, name)):
            if out[dep].action == "build":
                continue
            old = _old_recipe(repo, since, nodes[dep].path)
            if old is not None and old.version == nodes[dep].version:
                raise RecipeError(
                    f"{dep} merges {name}, which is rebuilt, but its version is still {nodes[dep].version}",
                    where=f"{nodes[dep].path}:1",
                    fix=f"bump {dep}'s version (e.g. to {bump(nodes[dep].version)}) so its new weights get a new tag",
                )
            out[dep] = Decision("build", f"parent {name} rebuilt")
    return out


def _with(moved: str, reason: str) -> str:
    return f"{moved}; {reason}" if moved else reason


def _same_name_at(repo: Any, since: str, deleted: set[Path], name: str | None) -> tuple[Path, list[Recipe]] | None:
    """The deleted file that held the recipe called ``name`` at ``since``, if any."""
    for path in sorted(deleted):
        if path.suffix in (".yaml", ".yml"):
            old = _old_recipes(repo, since, path)
            if old is not None and name and old[-1].name == name:
                return path, old
    return None


def bump(version: str) -> str:
    parts = version.split("-")[0].split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version + "-1"
