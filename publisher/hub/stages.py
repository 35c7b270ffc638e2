"""Stages published as their own repos, before the build that merges them.

A mergekit-multi stage named with a repo id (``name: org/stage``, see ``publisher/multi.py``)
is built into its own folder with its own manifest, and the documents after it read that
folder as a sibling recipe's output (``kind: recipe``, repo id ``org/stage``, no commit yet).
``publish`` of the final build publishes each such stage first (the same ``publish``: its
variants, card, tag), then writes the commit it got into every manifest of the build that
names the stage (and into ``checks.json``'s manifest digest: the weights checked are the
same, only the parent's pin moved) and re-renders the cards, so the final card names
``org/stage`` at that commit and, through the stage's card, the stage's own parents. The
same build published again finds the same commits: nothing changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.manifest import (
    MANIFEST_FILE,
    VARIANTS_DIR,
    Manifest,
    load_build_record,
    load_manifest,
)

if TYPE_CHECKING:
    from publisher.hub.publish_plan import RepoResult


@dataclass
class UnpublishedStage:
    repo_id: str
    folder: Path


def unpublished_stages(build_dir: Path) -> list[UnpublishedStage]:
    """Parents of ``build_dir`` that are local builds of a repo with no commit yet."""
    record = load_build_record(build_dir)
    if record is None:
        return []
    out = []
    for inp in load_manifest(build_dir).inputs:
        folder = record.parent_folders.get(inp.ref)
        if inp.kind != "recipe" or inp.revision is not None or not inp.repo_id or folder is None:
            continue
        if not (Path(folder) / MANIFEST_FILE).is_file():
            continue
        try:
            merged = load_manifest(Path(folder)).variant("merged")
        except (KeyError, ValueError):
            continue
        if merged.repo_id == inp.repo_id:
            out.append(UnpublishedStage(inp.repo_id, Path(folder)))
    return out


def publish_stages(
    build_dir: Path, publish_one: Callable[[Path], list[RepoResult]], *, dry_run: bool, log: Callable[[str], None]
) -> list[RepoResult]:
    """Publish every unpublished stage ``build_dir`` merges, then pin it there; their results."""
    results: list[RepoResult] = []
    for stage in unpublished_stages(build_dir):
        log(f"{stage.repo_id}: a stage of this build, published first")
        own = publish_one(stage.folder)
        results += own
        merged = next((r for r in own if r.variant == "merged"), None)
        if merged is not None and merged.commit and not dry_run:
            pin_stage(build_dir, stage.repo_id, merged.commit, log)
    return results


def _manifests(build_dir: Path) -> list[Path]:
    return [build_dir / MANIFEST_FILE, *sorted((build_dir / VARIANTS_DIR).glob(f"*/{MANIFEST_FILE}"))]


def pin_stage(build_dir: Path, repo_id: str, commit: str, log: Callable[[str], None]) -> None:
    """Write ``commit`` as the revision of the stage ``repo_id`` in every manifest of the build."""
    from publisher.check.results import load_report, write_report

    report = load_report(build_dir)
    root = build_dir / MANIFEST_FILE
    old_root_sha = hashlib.sha256(root.read_bytes()).hexdigest()
    for path in _manifests(build_dir):
        manifest = Manifest.model_validate_json(path.read_text())
        inputs = [
            i.model_copy(update={"revision": commit}) if i.kind == "recipe" and i.repo_id == repo_id and i.revision is None else i
            for i in manifest.inputs
        ]
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(manifest.model_copy(update={"inputs": inputs}).to_json())
        tmp.replace(path)
    if report is not None and report.manifest_sha256 == old_root_sha:
        write_report(build_dir, report.model_copy(update={"manifest_sha256": hashlib.sha256(root.read_bytes()).hexdigest()}))
    from publisher.card.settings import rendered_here, rerender
    from publisher.errors import PublisherError

    if rendered_here(build_dir):
        log(f"{repo_id} pinned to its commit {commit[:7]}; re-rendering the cards")
        try:
            rerender(build_dir, warn=lambda _w: None)
        except PublisherError as e:
            log(f"cards not re-rendered ({e.what}); run `publisher card` to show the pin")
