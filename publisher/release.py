"""Releases: the recipes as a graph, what changed since a git ref, and build → publish in waves.

A recipe whose parent is another recipe's ``name`` depends on it: the parent is built and
published first and the child merges exactly the revision just published (its commit sha
is pinned), so no child is ever built from a stale intermediate. Change detection (gitpython)
decides per recipe: rebuild and publish (the merge changed, or a parent was rebuilt),
re-render and republish the card only (the card section or a template changed: a
README-only commit, no weight upload), or skip. A merge that changed without a version bump
is an error, because a published tag never moves.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from publisher.build import BuildOptions, build
from publisher.errors import PublishError, RecipeError
from publisher.recipe import LoadedRecipe, Recipe, load_recipe, model_references
from publisher.sources import HUB_REF_RE

Action = Literal["build", "card", "skip"]
# Sections whose change changes the weights (and so needs a new version).
WEIGHT_SECTIONS = ("merge", "quantize", "seed", "compute_dtype")


@dataclass
class Node:
    name: str
    path: Path
    loaded: LoadedRecipe
    parents: list[str] = field(default_factory=list)  # sibling recipes this one merges

    @property
    def version(self) -> str:
        return self.loaded.recipe.version or ""


@dataclass
class Decision:
    action: Action
    reason: str


@dataclass
class Row:
    """One line of the release summary."""

    recipe: str
    version: str
    action: str
    repos: list[str]
    commit: str | None
    seconds: float


def load_catalog(recipes_dir: Path) -> dict[str, Node]:
    """Every recipe under ``recipes_dir`` by name, with its edges to sibling recipes."""
    nodes: dict[str, Node] = {}
    paths = sorted(p for p in Path(recipes_dir).rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not paths:
        raise RecipeError("no recipes (*.yaml) found", where=str(recipes_dir))
    for path in paths:
        loaded = load_recipe(path)
        r = loaded.recipe
        if not r.name or not r.version:
            missing = "name" if not r.name else "version"
            raise RecipeError(
                f"a released recipe needs '{missing}'",
                where=f"{path}:1",
                fix="add name: org/model and version: 1.0.0",
            )
        if r.name in nodes:
            raise RecipeError(
                f"two recipes publish {r.name}: {nodes[r.name].path} and {path}",
                where=str(path),
                fix="give each recipe its own name",
            )
        nodes[r.name] = Node(name=r.name, path=path, loaded=loaded)
    for node in nodes.values():
        for ref in model_references(node.loaded.merge):
            m = HUB_REF_RE.match(ref)
            if m and m.group("repo") in nodes and m.group("repo") != node.name:
                node.parents.append(m.group("repo"))
    return nodes


def waves(nodes: dict[str, Node]) -> list[list[str]]:
    """Kahn's levels: every recipe's parents are in earlier waves. A cycle is an error."""
    remaining = {n: set(node.parents) for n, node in nodes.items()}
    out: list[list[str]] = []
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if not deps)
        if not ready:
            cycle = _find_cycle(remaining)
            raise RecipeError(
                f"recipes depend on each other in a cycle: {' -> '.join(cycle)}",
                where=str(nodes[cycle[0]].path),
                fix="a recipe cannot (indirectly) merge its own output",
            )
        out.append(ready)
        for n in ready:
            del remaining[n]
        for deps in remaining.values():
            deps.difference_update(ready)
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    start = sorted(graph)[0]
    path = [start]
    seen = {start: 0}
    while True:
        nxt = sorted(graph[path[-1]])[0]
        if nxt in seen:
            return [*path[seen[nxt] :], nxt]
        seen[nxt] = len(path)
        path.append(nxt)


def dependents(nodes: dict[str, Node], name: str) -> set[str]:
    out: set[str] = set()
    frontier = [name]
    while frontier:
        cur = frontier.pop()
        for n, node in nodes.items():
            if cur in node.parents and n not in out:
                out.add(n)
                frontier.append(n)
    return out


# ----------------------------------------------------------------------------- change detection


def _weight_sections(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in WEIGHT_SECTIONS}


def _dump(recipe: Recipe) -> dict[str, Any]:
    return recipe.model_dump(mode="json")


def _old_recipe(repo: Any, ref: str, path: Path) -> Recipe | None:
    """The recipe as it was at ``ref`` (None if the file did not exist then)."""
    import git

    rel = path.resolve().relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    try:
        text = repo.git.show(f"{ref}:{rel}")
    except git.GitCommandError:
        return None
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return None
    if "merge" not in data:
        from publisher.recipe import OUR_SECTIONS

        data = {**{k: v for k, v in data.items() if k in OUR_SECTIONS}, "merge": {k: v for k, v in data.items() if k not in OUR_SECTIONS}}
    try:
        return Recipe.model_validate(data)
    except ValueError:
        return None


def decide(nodes: dict[str, Node], recipes_dir: Path, since: str | None, templates_dir: Path | None = None) -> dict[str, Decision]:
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
        raise RecipeError(f"unknown git ref '{since}'", where=str(recipes_dir), fix="fetch enough history (fetch-depth: 0) or pass another ref") from e
    root = Path(repo.working_tree_dir or ".").resolve()
    changed = {root / p for p in repo.git.diff("--name-only", since, "--").splitlines() if p}
    changed |= {root / p for p in repo.untracked_files}
    templates = (templates_dir or root / "templates").resolve()
    template_changed = any(templates in p.parents for p in changed)
    out: dict[str, Decision] = {}
    for name, node in nodes.items():
        path = node.path.resolve()
        custom = node.loaded.recipe.card.template
        custom_changed = bool(custom) and (node.path.parent / str(custom)).resolve() in changed
        if path in changed:
            old = _old_recipe(repo, since, path)
            new = node.loaded.recipe
            if old is None:
                out[name] = Decision("build", "new recipe")
            elif _weight_sections(_dump(old)) != _weight_sections(_dump(new)):
                if old.version == new.version:
                    raise RecipeError(
                        f"the merge changed since {since} but version is still {new.version}",
                        where=f"{node.path}:1",
                        fix=f"bump version (e.g. to {_bump(new.version or '0.0.0')}): a published tag never moves",
                    )
                out[name] = Decision("build", f"recipe changed ({old.version} → {new.version})")
            elif old.version != new.version:
                out[name] = Decision("build", f"version bumped ({old.version} → {new.version})")
            else:
                out[name] = Decision("card", "card section changed")
        elif custom_changed or (template_changed and not custom):
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
                    fix=f"bump {dep}'s version (e.g. to {_bump(nodes[dep].version)}) so its new weights get a new tag",
                )
            out[dep] = Decision("build", f"parent {name} rebuilt")
    return out


def _bump(version: str) -> str:
    parts = version.split("-")[0].split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version + "-1"


def matrix(nodes: dict[str, Node], decisions: dict[str, Decision], recipes_root: Path) -> dict[str, Any]:
    """The GitHub Actions matrix: one entry per recipe to act on, grouped in dependency waves."""
    out: dict[str, Any] = {}
    levels = [[n for n in wave if decisions[n].action != "skip"] for wave in waves(nodes)]
    levels = [w for w in levels if w]
    for i, wave in enumerate(levels):
        out[f"wave{i}"] = {
            "include": [
                {
                    "name": n,
                    "slug": n.replace("/", "--"),
                    "recipe": _rel(nodes[n].path, recipes_root),
                    "action": decisions[n].action,
                }
                for n in wave
            ]
        }
    out["waves"] = len(levels)
    return out


def _display(path: Path) -> str:
    return _rel(path, Path.cwd())


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- running a release


@dataclass
class ReleaseOptions:
    builds_dir: Path = Path(".publisher/builds")
    endpoint: str | None = None
    token: str | None = None
    dry_run: bool = False
    only: list[str] | None = None
    build: BuildOptions = field(default_factory=BuildOptions)
    strict: bool = False


def build_dir_for(options: ReleaseOptions, node: Node) -> Path:
    return options.builds_dir / node.name.replace("/", "--") / node.version


def _published_commit(name: str, version: str, endpoint: str | None, token: str | None) -> str | None:
    """The commit a recipe's tag points to on the Hub, if it is published."""
    from huggingface_hub.errors import RepositoryNotFoundError

    from publisher.hub.remote import client_settings, make_api, resolve_endpoint, resolve_token

    ep = resolve_endpoint(endpoint)
    api = make_api(ep, resolve_token(token))
    with client_settings(ep):
        try:
            refs = api.list_repo_refs(name)
        except RepositoryNotFoundError:
            return None
    for tag in refs.tags:
        if tag.name == f"v{version}":
            return str(tag.target_commit)
    return None


def run_release(
    recipes_dir: Path,
    *,
    since: str | None = None,
    options: ReleaseOptions | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[Row]:
    options = options or ReleaseOptions()
    nodes = load_catalog(recipes_dir)
    decisions = decide(nodes, recipes_dir, since)
    if options.only:
        unknown = [n for n in options.only if n not in nodes]
        if unknown:
            raise RecipeError(f"no recipe named {unknown[0]}", where=str(recipes_dir), fix="use a recipe's 'name'")
    pins: dict[str, str] = {}
    rows: list[Row] = []
    for wave in waves(nodes):
        for name in wave:
            if options.only and name not in options.only:
                continue
            node, decision = nodes[name], decisions[name]
            t0 = time.monotonic()
            if decision.action == "skip":
                rows.append(Row(_display(node.path), node.version, "unchanged", [name], None, 0.0))
                continue
            if options.dry_run:
                rows.append(Row(_display(node.path), node.version, f"would {decision.action} ({decision.reason})", [name], None, 0.0))
                continue
            for parent in node.parents:
                if parent not in pins:
                    commit = _published_commit(parent, nodes[parent].version, options.endpoint, options.token)
                    if commit is None:
                        raise PublishError(
                            f"{name} merges {parent}, whose v{nodes[parent].version} is not published",
                            where=str(node.path),
                            fix=f"release {parent} first (it is in an earlier wave)",
                        )
                    pins[parent] = commit
            log(f"{name}: {decision.reason}; building")
            out = build_dir_for(options, node)
            out.parent.mkdir(parents=True, exist_ok=True)
            # Cards are rendered below with the release's endpoint (lineage reads parents' cards there).
            build_options = dataclasses.replace(options.build, render_cards=False)
            build(node.path, out, build_options, pins=pins, endpoint=options.endpoint, token=options.token)
            _render(out, node, recipes_dir, options)
            from publisher.hub.publish import publish

            report = publish(out, endpoint=options.endpoint, token=options.token, log=log)
            merged = next((r for r in report.results if r.variant == "merged"), report.results[0])
            if merged.commit:
                pins[name] = merged.commit
            actions = sorted({r.action for r in report.results})
            rows.append(
                Row(
                    _display(node.path),
                    node.version,
                    ", ".join(actions),
                    [r.repo_id for r in report.results],
                    merged.commit,
                    round(time.monotonic() - t0, 1),
                )
            )
    return rows


def _render(build_dir: Path, node: Node, recipes_dir: Path, options: ReleaseOptions) -> None:
    """Cards are re-rendered at every release: a template may have changed since the build."""
    from publisher.card import render_cards

    render_cards(
        build_dir,
        recipe_dir=node.path.parent,
        recipes_dir=recipes_dir,
        endpoint=options.endpoint,
        token=options.token,
        strict=options.strict,
        warn=options.build.warn,
    )
