"""Releases: the recipes as a graph, what changed since a git ref, and build → publish in waves.

A recipe whose parent is another recipe's ``name`` depends on it: the parent is released
first and the child merges exactly the commit the parent's version is published at (its sha
is pinned), so no child is ever built from a stale intermediate.

Change detection (gitpython, ``--changed-since REF``) decides per recipe: release it (its
weights changed: a new version, or a parent of it was rebuilt), re-render its card only (its
card text, its card template, its evaluations file, or the catalog's ``templates/card/``
changed), or skip it. A merge that changed while the version stayed is an error, because a
published tag never moves.

What is already on the Hub decides how: a version whose tag exists is never built again.
Its card is re-rendered from a header-only copy of the published build (config, tokenizer,
manifest and safetensors headers; ``publisher.hub.published``) or from the local build that
was published, and only README.md is committed when it changed. A version not yet published
is built (or its local build reused) and published whole. So a full release is idempotent,
on a laptop or on a fresh CI runner alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from publisher.build import BuildOptions
from publisher.errors import PublisherError, PublishError, RecipeError
from publisher.manifest import MANIFEST_FILE, RECIPE_FILE, Manifest, load_manifest
from publisher.recipe import LoadedRecipe, Recipe, load_recipe, model_references
from publisher.sources import HUB_REF_RE

if TYPE_CHECKING:
    from publisher.hub.publish import PublishReport

Action = Literal["build", "card", "skip"]
# Sections whose change changes the weights (and so needs a new version).
WEIGHT_SECTIONS = ("merge", "quantize", "seed", "compute_dtype")
CARD_TEMPLATES = "card"  # the subfolder of a catalog's templates/ that cards are rendered from
MAX_MATRIX_JOBS = 256  # GitHub Actions: a matrix makes at most 256 jobs per workflow run


@dataclass
class Node:
    name: str
    path: Path
    loaded: LoadedRecipe
    parents: list[str] = field(default_factory=list)  # sibling recipes this one merges
    externals: list[str] = field(default_factory=list)  # other Hub references, as written

    @property
    def version(self) -> str:
        return self.loaded.recipe.version or ""

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    def card_inputs(self) -> set[Path]:
        """Files besides the recipe that its card is rendered from (custom template, evaluations)."""
        card = self.loaded.recipe.card
        out = set()
        if card.template:
            out.add((self.path.parent / card.template).resolve())
        if isinstance(card.evaluations, str):
            out.add((self.path.parent / card.evaluations).resolve())
        return out

    def variant_repos(self) -> list[str]:
        from publisher.quantize.schemes import get_scheme

        out = [self.name]
        for spec in self.loaded.recipe.quantize:
            try:
                out.append(f"{self.name}-{spec.suffix or get_scheme(spec.scheme).suffix}")
            except PublisherError:
                continue  # the build reports the bad scheme with its line
        return out


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
    reason: str = ""


def load_catalog(recipes_dir: Path) -> dict[str, Node]:
    """Every recipe under ``recipes_dir`` by name, with its edges to sibling recipes."""
    recipes_dir = Path(recipes_dir)
    if not recipes_dir.is_dir():
        raise RecipeError("not a folder", where=str(recipes_dir), fix="give the folder that holds the recipes")
    nodes: dict[str, Node] = {}
    paths = sorted(p for p in recipes_dir.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
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
            if m is None:
                continue
            repo = m.group("repo")
            if repo in nodes and repo != node.name:
                if repo not in node.parents:
                    node.parents.append(repo)
            elif ref not in node.externals:
                node.externals.append(ref)
    return nodes


def waves(nodes: dict[str, Node]) -> list[list[str]]:
    """Kahn's levels: every recipe's parents are in earlier waves. A cycle is an error."""
    remaining = {n: set(node.parents) for n, node in nodes.items()}
    children = _children(nodes)
    out: list[list[str]] = []
    ready = sorted(n for n, deps in remaining.items() if not deps)
    while remaining:
        if not ready:
            cycle = _find_cycle(remaining)
            raise RecipeError(
                f"recipes depend on each other in a cycle: {' -> '.join(cycle)}",
                where=str(nodes[cycle[0]].path),
                fix="a recipe cannot (indirectly) merge its own output",
            )
        out.append(ready)
        nxt: set[str] = set()
        for n in ready:
            del remaining[n]
        for n in ready:
            for child in children[n]:
                deps = remaining[child]
                deps.discard(n)
                if not deps:
                    nxt.add(child)
        ready = sorted(nxt)
    return out


def _children(nodes: dict[str, Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for n, node in nodes.items():
        for p in node.parents:
            children[p].append(n)
    return children


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """Every node left has a parent left, so walking parents from any of them must loop."""
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
    """Every recipe that merges ``name``, directly or through others."""
    children = _children(nodes)
    out: set[str] = set()
    frontier = [name]
    while frontier:
        for child in children[frontier.pop()]:
            if child not in out:
                out.add(child)
                frontier.append(child)
    return out


# ----------------------------------------------------------------------------- change detection


def default_templates_dir(recipes_dir: Path) -> Path | None:
    """The catalog's templates folder: ``templates/`` beside the recipes folder, if there is one."""
    candidate = Path(recipes_dir).resolve().parent / "templates"
    return candidate if candidate.is_dir() else None


def _weights(recipe: Recipe) -> dict[str, Any]:
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
            elif _weights(old) != _weights(new):
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
                    fix=f"bump {dep}'s version (e.g. to {_bump(nodes[dep].version)}) so its new weights get a new tag",
                )
            out[dep] = Decision("build", f"parent {name} rebuilt")
    return out


def _bump(version: str) -> str:
    parts = version.split("-")[0].split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"
    return version + "-1"


# ----------------------------------------------------------------------------- the CI matrix


def slug(name: str) -> str:
    return name.replace("/", "--")


def parents_key(nodes: dict[str, Node], names: list[str]) -> str:
    """A cache key for the parents these recipes download: their refs, sibling parents' versions."""
    refs = sorted({r for n in names for r in nodes[n].externals})
    refs += sorted({f"{p}@v{nodes[p].version}" for n in names for p in nodes[n].parents})
    return hashlib.sha256("\n".join(refs).encode()).hexdigest()[:20]


def matrix(
    nodes: dict[str, Node],
    decisions: dict[str, Decision],
    recipes_root: Path,
    *,
    max_waves: int | None = None,
    max_jobs: int = MAX_MATRIX_JOBS,
) -> dict[str, Any]:
    """The GitHub Actions matrix: the recipes to act on, grouped in dependency waves.

    ``wave<i>`` is a matrix (``{"include": [...]}``) whose jobs need only earlier waves.
    A wave of more than ``max_jobs`` recipes is packed into ``max_jobs`` entries of several
    recipes each (``names``). More than ``max_waves`` waves is an error: the workflow has a
    fixed number of wave jobs.
    """
    levels = [[n for n in wave if decisions[n].action != "skip"] for wave in waves(nodes)]
    levels = [w for w in levels if w]
    if max_waves is not None and len(levels) > max_waves:
        deepest = levels[-1][0]
        raise RecipeError(
            f"this release needs {len(levels)} dependency waves (e.g. {deepest} is {len(levels)} generations down) "
            f"but the workflow has {max_waves} wave jobs",
            where=str(recipes_root),
            fix=f"add jobs wave{max_waves} to wave{len(levels) - 1} to .github/workflows/release.yml "
            "(each a copy of the last, needing the one before) and set MAX_WAVES there to match",
        )
    out: dict[str, Any] = {"waves": len(levels), "jobs": 0}
    for i, wave in enumerate(levels):
        packs = _pack(wave, max_jobs)
        entries: list[dict[str, str]] = []
        for pack in packs:
            first = nodes[pack[0]]
            single = len(pack) == 1
            actions = {decisions[n].action for n in pack}
            entries.append(
                {
                    "name": first.name if single else f"{first.name} and {len(pack) - 1} more",
                    "names": " ".join(pack),
                    "group": slug(first.name) if single else f"pack-{i}-{len(entries)}",
                    "recipe": _rel(first.path, recipes_root) if single else "",
                    "action": "build" if "build" in actions else "card",
                    "cache_key": parents_key(nodes, pack),
                }
            )
        out[f"wave{i}"] = {"include": entries}
        out["jobs"] += len(entries)
    out["authors"] = " ".join(sorted({n.split("/")[0] for n in nodes}))
    return out


def _pack(names: list[str], max_jobs: int) -> list[list[str]]:
    if len(names) <= max_jobs:
        return [[n] for n in names]
    packs: list[list[str]] = [[] for _ in range(max_jobs)]
    for i, n in enumerate(names):
        packs[i % max_jobs].append(n)
    return packs


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
    templates_dir: Path | None = None  # default: templates/ beside the recipes folder


def build_dir_for(options: ReleaseOptions, node: Node) -> Path:
    return Path(options.builds_dir) / slug(node.name) / node.version


def run_release(
    recipes_dir: Path,
    *,
    since: str | None = None,
    options: ReleaseOptions | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[Row]:
    """Release the recipes in dependency order; one summary row per recipe considered."""
    options = options or ReleaseOptions()
    recipes_dir = Path(recipes_dir)
    if options.templates_dir is None:
        options = dataclasses.replace(options, templates_dir=default_templates_dir(recipes_dir))
    nodes = load_catalog(recipes_dir)
    order = waves(nodes)
    decisions = decide(nodes, recipes_dir, since, options.templates_dir)
    if options.only:
        unknown = [n for n in options.only if n not in nodes]
        if unknown:
            raise RecipeError(f"no recipe named {unknown[0]}", where=str(recipes_dir), fix="use a recipe's 'name'")
    releaser = _Releaser(nodes, recipes_dir, options, log)
    rows: list[Row] = []
    for wave in order:
        for name in wave:
            if options.only and name not in options.only:
                continue
            rows.append(releaser.release(nodes[name], decisions[name]))
    return rows


class _Releaser:
    def __init__(self, nodes: dict[str, Node], recipes_dir: Path, options: ReleaseOptions, log: Callable[[str], None]) -> None:
        from publisher.hub.published import PublishedView

        self.nodes = nodes
        self.recipes_dir = recipes_dir
        self.options = options
        self.log = log
        self.view = PublishedView(options.endpoint, options.token)
        self.pins: dict[str, str] = {}  # recipe name → the commit its current version is published at

    def release(self, node: Node, decision: Decision) -> Row:
        t0 = time.monotonic()
        if decision.action == "skip":
            return self._row(node, "unchanged", node.variant_repos(), None, t0, decision.reason)
        pins = self._parent_pins(node)
        published = self.view.tag_commit(node.name, node.tag)
        if published is not None:
            row = self._rerender(node, decision, pins, t0)
            self.pins[node.name] = published
            return row
        if self.options.dry_run:
            return self._row(node, "would build and publish", node.variant_repos(), None, t0, decision.reason)
        return self._build_and_publish(node, decision, pins, t0)

    def _row(self, node: Node, action: str, repos: list[str], commit: str | None, t0: float, reason: str) -> Row:
        return Row(_display(node.path), node.version, action, repos, commit, round(time.monotonic() - t0, 1), reason)

    def _parent_pins(self, node: Node) -> dict[str, str]:
        """The commit of each sibling parent's current version (published in an earlier wave)."""
        pins: dict[str, str] = {}
        for parent in node.parents:
            commit = self.pins.get(parent) or self.view.tag_commit(parent, self.nodes[parent].tag)
            if commit is None:
                if self.options.dry_run:
                    continue  # it would be built first in a real run
                raise PublishError(
                    f"{node.name} merges {parent}, whose {self.nodes[parent].tag} is not published",
                    where=str(node.path),
                    fix=f"release {parent} first (it is in an earlier wave)",
                )
            pins[parent] = commit
        return pins

    # ------------------------------------------------------------------ a version not yet published
    def _build_and_publish(self, node: Node, decision: Decision, pins: dict[str, str], t0: float) -> Row:
        from publisher.build import build
        from publisher.hub.publish import publish

        out = build_dir_for(self.options, node)
        existing = _existing_manifest(out)
        if existing is not None and _reusable(out, existing, node, pins):
            self.log(f"{node.name}: {decision.reason}; reusing the build in {out}")
        else:
            if out.exists():
                self.log(f"{node.name}: the build in {out} is not of this recipe and pins; replacing it (never published)")
                shutil.rmtree(out)
            self.log(f"{node.name}: {decision.reason}; building")
            out.parent.mkdir(parents=True, exist_ok=True)
            # Cards are rendered below, with the catalog's recipes, templates and the release's endpoint.
            build_options = dataclasses.replace(self.options.build, render_cards=False)
            build(node.path, out, build_options, pins=pins, endpoint=self.options.endpoint, token=self.options.token)
        self._render(out, node)
        report = publish(out, endpoint=self.options.endpoint, token=self.options.token, log=self.log)
        for r in report.results:
            self.view.forget(r.repo_id)
        merged = next((r for r in report.results if r.variant == "merged"), report.results[0])
        if merged.commit:
            self.pins[node.name] = merged.commit
        actions = ", ".join(sorted({r.action for r in report.results}))
        return self._row(node, actions, [r.repo_id for r in report.results], merged.commit, t0, decision.reason)

    # ------------------------------------------------------------------ a published version
    def _rerender(self, node: Node, decision: Decision, pins: dict[str, str], t0: float) -> Row:
        """Re-render the cards of a published version; commit README.md where it changed."""
        from publisher.hub.publish import publish
        from publisher.hub.published import HEADER_ONLY_MARK

        local = build_dir_for(self.options, node)
        remote_manifest = self.view.read_manifest(node.name, node.tag)
        with tempfile.TemporaryDirectory(prefix=".card-") as tmp:
            if _same_bytes(local / MANIFEST_FILE, remote_manifest):
                folder = local  # the very build that was published
            else:
                folder = Path(tmp) / "build"
                self.log(f"{node.name}: {node.tag} is published; reading its headers to re-render the cards")
                self.view.fetch_build(node.name, node.tag, folder, manifest=remote_manifest)
            manifest = load_manifest(folder)
            self._check_published(node, folder, manifest, pins)
            self._render(folder, node)
            header_only = (folder / HEADER_ONLY_MARK).is_file()
            if header_only or self.options.dry_run:
                plan = publish(folder, dry_run=True, endpoint=self.options.endpoint, token=self.options.token)
                if header_only:
                    _check_card_only(plan, node)
                if self.options.dry_run:
                    report = plan
            if not self.options.dry_run:
                report = publish(folder, endpoint=self.options.endpoint, token=self.options.token, log=self.log)
        for r in report.results:
            self.view.forget(r.repo_id)
        actions = ", ".join(sorted({r.action for r in report.results}))
        merged = next((r for r in report.results if r.variant == "merged"), report.results[0])
        reason = f"{node.tag} already published; {decision.reason}"
        return self._row(node, actions, [r.repo_id for r in report.results], merged.commit, t0, reason)

    def _check_published(self, node: Node, folder: Path, manifest: Manifest, pins: dict[str, str]) -> None:
        """A published version must be the one this recipe and its parents make, or need a bump."""
        try:
            published = load_recipe(folder / RECIPE_FILE).recipe
        except PublisherError as e:
            self.log(f"{node.name}: cannot read the published recipe.yaml ({e.what}); weights not compared")
            published = None
        if published is not None and _weights(published) != _weights(node.loaded.recipe):
            raise RecipeError(
                f"{node.name} {node.tag} is already published with other weights: the merge changed but the version did not",
                where=f"{node.path}:1",
                fix=f"bump version (e.g. to {_bump(node.version)}): a published tag never moves",
            )
        for parent, commit in pins.items():
            used = [i.revision for i in manifest.inputs if i.repo_id == parent]
            if used and used[0] != commit:
                raise RecipeError(
                    f"{node.name} {node.tag} was built from {parent}@{(used[0] or '?')[:7]}, "
                    f"but {parent} {self.nodes[parent].tag} is {commit[:7]}",
                    where=f"{node.path}:1",
                    fix=f"bump {node.name}'s version (e.g. to {_bump(node.version)}) to rebuild it on the new parent",
                )

    def _render(self, build_dir: Path, node: Node) -> None:
        """Cards are rendered at every release: the template or the card text may have changed.

        Parents' cards are read from the endpoint the release publishes to; a loopback one (the
        local Hub) is reachable under HF_HUB_OFFLINE, as it is for the parents' weights.
        """
        from publisher.card import render_cards
        from publisher.hub.remote import loopback_online, resolve_endpoint

        with loopback_online(resolve_endpoint(self.options.endpoint)):
            render_cards(
                build_dir,
                recipe_dir=node.path.parent,
                recipes_dir=self.recipes_dir,
                endpoint=self.options.endpoint,
                token=self.options.token,
                strict=self.options.strict,
                warn=self.options.build.warn,
                templates_dir=self.options.templates_dir,
            )


def _check_card_only(plan: PublishReport, node: Node) -> None:
    """A header-only copy may change README.md and nothing else: its weights are holes."""
    stray = [f"{r.repo_id}/{c.path}" for r in plan.results for c in r.changes if c.path != "README.md"]
    if stray or any(r.action not in ("would update card", "up to date") for r in plan.results):
        raise PublishError(
            f"re-rendering {node.tag} would change more than README.md ({', '.join(stray) or 'a missing tag'})",
            where=node.name,
            fix="the repo differs from its manifest.json; publish a new version",
        )


def _existing_manifest(out: Path) -> Manifest | None:
    try:
        return load_manifest(out) if (out / MANIFEST_FILE).is_file() else None
    except PublisherError:
        return None


def _reusable(out: Path, manifest: Manifest, node: Node, pins: dict[str, str]) -> bool:
    """A local build of this version makes the same weights: same weight sections, same parent pins."""
    try:
        built = load_recipe(out / RECIPE_FILE).recipe
    except PublisherError:
        return False
    if _weights(built) != _weights(node.loaded.recipe):
        return False
    revisions = {i.repo_id: i.revision for i in manifest.inputs if i.repo_id}
    return all(revisions.get(p) == c for p, c in pins.items())


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False
