"""Change detection with gitpython: what each recipe needs since a git ref."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from publisher.errors import PublisherError, RecipeError
from publisher.recipe import Recipe, load_recipe
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


def _old_recipe(repo: Any, ref: str, path: Path) -> Recipe | None:
    """The recipe as it was at ``ref`` (None if the file did not exist then or does not load)."""
    import git

    rel = path.resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    try:
        text = repo.git.show(f"{ref}:{rel}", stdout_as_string=False)
    except git.GitCommandError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / path.name
        old.write_bytes(text if isinstance(text, bytes) else str(text).encode())
        try:
            return load_recipe(old).recipe
        except PublisherError:
            return None


def decide(
    nodes: dict[str, Node], recipes_dir: Path, since: str | None, templates_dir: Path | None = None
) -> dict[str, Decision]:
    """What each recipe needs, comparing the working tree with git ``since``."""
    if since is None:
        return {n: Decision("build", "full release") for n in nodes}
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
    root = Path(repo.working_tree_dir or ".").resolve()
    changed = {(root / p).resolve() for p in repo.git.diff("--name-only", since, "--").splitlines() if p}
    changed |= {(root / p).resolve() for p in repo.untracked_files}
    templates = (templates_dir or default_templates_dir(recipes_dir) or root / "templates").resolve()
    card_templates = templates / CARD_TEMPLATES
    template_changed = any(card_templates in p.parents for p in changed)
    out: dict[str, Decision] = {}
    for name, node in nodes.items():
        path = node.path.resolve()
        if path in changed:
            old = _old_recipe(repo, since, path)
            new = node.loaded.recipe
            if old is None:
                out[name] = Decision("build", "new recipe")
            elif weights(old) != weights(new):
                if old.version == new.version:
                    raise RecipeError(
                        f"the merge changed since {since} but version is still {new.version}",
                        where=f"{node.path}:1",
                        fix=f"bump version (e.g. to {bump(new.version or '0.0.0')}): a published tag never moves",
                    )
                out[name] = Decision("build", f"recipe changed ({old.version} → {new.version})")
            elif old.version != new.version:
                out[name] = Decision("build", f"version bumped ({old.version} → {new.version})")
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


def bump(version: str) -> str:
    parts = version.split("-")[0].split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version + "-1"
