"""Reading local build directories for the catalog (``publisher catalog --builds DIR``).

Every folder under DIR holding a ``manifest.json`` is a build (a build's own ``variants/`` are
not searched again); each variant with a repo id is a model. Several builds of the same repo
(versions) are one model with several versions, the newest one described.
"""

from __future__ import annotations

import os
from pathlib import Path

from publisher.card.facts import model_facts
from publisher.card.fetchers import FetchError
from publisher.card.provenance import built_at, parent_folder
from publisher.catalog.records import (
    RepoRecord,
    Skipped,
    served_context,
    sort_versions,
    version_key,
)
from publisher.catalog.schema import Version
from publisher.errors import CatalogError, PublisherError
from publisher.manifest import MANIFEST_FILE, RECIPE_FILE, load_manifest

README = "README.md"


def find_builds(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise CatalogError("--builds is not a folder", where=str(root), fix="give the folder your builds are in")
    if (root / MANIFEST_FILE).is_file():
        return [root]
    found: list[Path] = []
    for here, dirs, files in os.walk(root):
        if MANIFEST_FILE in files and Path(here) != root:
            found.append(Path(here))
            dirs[:] = []  # a build's variants/ are part of it
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith(".partial"))
    return sorted(found)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig") if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def read_builds(root: Path) -> tuple[list[RepoRecord], list[Skipped], dict[str, Path]]:
    """(records, skips, parents' local folders by repo id: their cards extend the lineage)."""
    builds = find_builds(root)
    if not builds:
        raise CatalogError("no builds found (no manifest.json under it)", where=str(root),
                           fix="run `publisher build RECIPE --out DIR/NAME` first")
    by_repo: dict[str, list[RepoRecord]] = {}
    skipped: list[Skipped] = []
    parent_folders: dict[str, Path] = {}
    for build in builds:
        try:
            manifest = load_manifest(build)
        except PublisherError as e:
            skipped.append(Skipped(str(build), e.what, True))
            continue
        recipe = _read(build / RECIPE_FILE)
        for inp in manifest.inputs:
            local = parent_folder(build, inp)
            if inp.repo_id and local is not None and (local / README).is_file():
                parent_folders.setdefault(inp.repo_id.casefold(), local)
        for v in manifest.variants:
            folder = build / v.folder if v.folder else build
            label = v.repo_id or f"{build} ({v.name})"
            if not v.repo_id:
                skipped.append(Skipped(label, "the recipe has no name, so the model has no repo id", True))
                continue
            card = _read(folder / README)
            if card is None:
                skipped.append(Skipped(v.repo_id, f"no model card in {folder} (run `publisher card {build}`)", True))
                continue
            try:
                facts = model_facts(folder, context_length=served_context(recipe))
            except PublisherError as e:
                skipped.append(Skipped(v.repo_id, f"its weights cannot be described ({e})", True))
                continue
            version = Version(version=manifest.recipe_version or "0", tag=None, commit=None, date=built_at(build))
            by_repo.setdefault(v.repo_id.casefold(), []).append(
                RepoRecord(
                    repo_id=v.repo_id,
                    card_text=card,
                    facts=facts,
                    versions=[version],
                    revision=None,
                    source=str(folder),
                    extra_files={RECIPE_FILE: recipe},
                )
            )
    records = []
    for group in by_repo.values():
        group.sort(key=lambda r: (version_key(r.versions[0].version), r.versions[0].date), reverse=True)
        newest = group[0]
        versions: dict[str, Version] = {}
        for r in group:
            versions.setdefault(r.versions[0].version, r.versions[0])
        newest.versions = sort_versions(list(versions.values()))
        records.append(newest)
    return records, skipped, parent_folders


class FoldersFetcher:
    """Cards of parents that were read from local folders during the builds (stand-ins, mirrors)."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.folders = folders

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        folder = self.folders.get(repo_id.casefold())
        if folder is None:
            raise FetchError(f"{repo_id} is not among the builds or their parents")
        return _read(folder / filename)
