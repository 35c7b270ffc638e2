"""Running a release: build and publish what is new, re-render the cards of what is published."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.build import BuildOptions
from publisher.errors import PublisherError, PublishError, RecipeError
from publisher.manifest import MANIFEST_FILE, RECIPE_FILE, Manifest, load_manifest
from publisher.multi import stage_folder
from publisher.recipe import load_recipe
from publisher.release.changes import Decision, bump, decide, default_templates_dir, weights
from publisher.release.graph import Node, load_catalog, slug, waves
from publisher.release.matrix import rel
from publisher.streaming import StreamTarget, stream_settings

if TYPE_CHECKING:
    from publisher.hub.publish import PublishReport


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
    stream: bool = False  # read Hub parents by Range requests, upload shards as they are written


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
            for repo, tag in node.repo_tags().items():  # a multi-document file's stage repos too
                commit = published if repo == node.name else self.view.tag_commit(repo, tag)
                if commit is not None:
                    self.pins[repo] = commit
            return row
        if self.options.dry_run:
            return self._row(node, "would build and publish", node.variant_repos(), None, t0, decision.reason)
        return self._build_and_publish(node, decision, pins, t0)

    def _row(self, node: Node, action: str, repos: list[str], commit: str | None, t0: float, reason: str) -> Row:
        return Row(_display(node.path), node.version, action, repos, commit, round(time.monotonic() - t0, 1), reason)

    def _parent_pins(self, node: Node) -> dict[str, str]:
        """The commit of each sibling parent's current version (published in an earlier wave)."""
        pins: dict[str, str] = {}
        for repo in node.parent_repos:  # a sibling recipe's repo, or a stage repo of another file
            owner = next(n for n in node.parents if repo in self.nodes[n].repo_tags())
            tag = self.nodes[owner].repo_tags()[repo]
            commit = self.pins.get(repo) or self.view.tag_commit(repo, tag)
            if commit is None:
                if self.options.dry_run:
                    continue  # it would be built first in a real run
                raise PublishError(
                    f"{node.name} merges {repo}, whose {tag} is not published",
                    where=str(node.path),
                    fix=f"release {owner} first (it is in an earlier wave)",
                )
            pins[repo] = commit
        return pins

    # ------------------------------------------------------------------ a version not yet published
    def _build_and_publish(self, node: Node, decision: Decision, pins: dict[str, str], t0: float) -> Row:
        from publisher.build import build
        from publisher.hub.publish import publish

        out = build_dir_for(self.options, node)
        existing = _existing_manifest(out)
        if node.is_multi:
            # stages and the final are cached by content key (multi.py): build reuses what is current
            self.log(f"{node.name}: {decision.reason}; building its stages and final merge")
            out.parent.mkdir(parents=True, exist_ok=True)
            with self._settings():
                build(node.path, out, dataclasses.replace(self.options.build, render_cards=False), stream=self._stream(),
                      pins=pins, endpoint=self.options.endpoint, token=self.options.token)
        elif existing is not None and _reusable(out, existing, node, pins):
            self.log(f"{node.name}: {decision.reason}; reusing the build in {out}")
        else:
            if out.exists():
                self.log(f"{node.name}: the build in {out} is not of this recipe and pins; replacing it (never published)")
                shutil.rmtree(out)
            self.log(f"{node.name}: {decision.reason}; building")
            out.parent.mkdir(parents=True, exist_ok=True)
            # Cards are rendered below, with the catalog's recipes, templates and the release's endpoint.
            build_options = dataclasses.replace(self.options.build, render_cards=False)
            with self._settings():
                build(node.path, out, build_options, stream=self._stream(), pins=pins,
                      endpoint=self.options.endpoint, token=self.options.token)
        for repo in node.file.stage_repos if node.file else ():  # published first: their cards too
            self._render(stage_folder(out.parent / f"{out.name}.stages", repo), node)
        self._render(out, node)
        with self._settings():
            report = publish(out, endpoint=self.options.endpoint, token=self.options.token, log=self.log)
        for r in report.results:
            self.view.forget(r.repo_id)
            if r.variant == "merged" and r.commit:
                self.pins[r.repo_id] = r.commit  # the final's, and a stage repo's published first
        merged = next((r for r in report.results if r.variant == "merged" and r.repo_id == node.name), report.results[-1])
        actions = ", ".join(sorted({r.action for r in report.results}))
        return self._row(node, actions, [r.repo_id for r in report.results], merged.commit, t0, decision.reason)

    def _stream(self) -> StreamTarget | None:
        if not self.options.stream:
            return None
        return StreamTarget(self.options.endpoint, self.options.token, log=self.log)

    def _settings(self) -> AbstractContextManager[None]:
        return stream_settings(self.options.endpoint) if self.options.stream else contextlib.nullcontext()

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
            self._render(folder, node, published=self.view.tag_date(node.name, node.tag))
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
        merged = next((r for r in report.results if r.variant == "merged" and r.repo_id == node.name), report.results[-1])
        reason = f"{node.tag} already published; {decision.reason}"
        return self._row(node, actions, [r.repo_id for r in report.results], merged.commit, t0, reason)

    def _check_published(self, node: Node, folder: Path, manifest: Manifest, pins: dict[str, str]) -> None:
        """A published version must be the one this recipe and its parents make, or need a bump."""
        try:
            published = load_recipe(folder / RECIPE_FILE).recipe
        except PublisherError as e:
            self.log(f"{node.name}: cannot read the published recipe.yaml ({e.what}); weights not compared")
            published = None
        # (a multi-document file's recipe.yaml is its final merge with the stages as folders:
        # not comparable with the file; its stages and final are compared by content key at build)
        if published is not None and not node.is_multi and weights(published) != weights(node.loaded.recipe):
            raise RecipeError(
                f"{node.name} {node.tag} is already published with other weights: the merge changed but the version did not",
                where=f"{node.path}:1",
                fix=f"bump version (e.g. to {bump(node.version)}): a published tag never moves",
            )
        for parent, commit in pins.items():
            used = [i.revision for i in manifest.inputs if i.repo_id == parent]
            if used and used[0] != commit:
                raise RecipeError(
                    f"{node.name} {node.tag} was built from {parent}@{(used[0] or '?')[:7]}, "
                    f"but {parent} {self.nodes[parent].tag} is {commit[:7]}",
                    where=f"{node.path}:1",
                    fix=f"bump {node.name}'s version (e.g. to {bump(node.version)}) to rebuild it on the new parent",
                )

    def _render(self, build_dir: Path, node: Node, published: date | None = None) -> None:
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
                published=published,
            )


def _check_card_only(plan: PublishReport, node: Node) -> None:
    """A header-only copy may change README.md and nothing else: its weights are holes."""
    from publisher.hub.local_build import is_card_file

    stray = [f"{r.repo_id}/{c.path}" for r in plan.results for c in r.changes if not is_card_file(c.path)]
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
    if weights(built) != weights(node.loaded.recipe):
        return False
    revisions = {i.repo_id: i.revision for i in manifest.inputs if i.repo_id}
    return all(revisions.get(p) == c for p, c in pins.items())


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False


def _display(path: Path) -> str:
    return rel(path, Path.cwd())
