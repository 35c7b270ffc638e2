"""Check a build: structural checks of every variant, the measured pass, the gate; write checks.json.

This is the stage between the build directory and the card: ``publisher build`` runs it on
its work folder before the cards are rendered, ``publisher check BUILD_DIR`` runs it again
(with other options), and ``publish`` / ``release`` refuse a build whose report did not pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.check.gate import apply_thresholds, thresholds_of
from publisher.check.results import CheckReport, Finding, manifest_sha256, write_report
from publisher.check.settings import ChecksSection
from publisher.check.structural import check_model_folder, text_config
from publisher.errors import PublisherError

if TYPE_CHECKING:
    from publisher.check.measure import Target
    from publisher.check.reads import ReadsFor
from publisher.manifest import RECIPE_FILE, load_build_record, load_manifest


@dataclass(frozen=True)
class CheckOptions:
    """Command-line overrides of the recipe's ``checks:`` section (None: keep the recipe's)."""

    measure: bool | None = None
    with_parents: bool | None = None
    device: str | None = None
    tokens: int | None = None


def settings_of(build_dir: Path) -> ChecksSection:
    """The ``checks:`` section of the build's recipe.yaml (defaults when it has none)."""
    from publisher.recipe import load_recipe

    path = Path(build_dir) / RECIPE_FILE
    if not path.is_file():
        return ChecksSection()
    return load_recipe(path).recipe.checks


def with_options(settings: ChecksSection, options: CheckOptions) -> ChecksSection:
    changes = {k: v for k, v in vars(options).items() if v is not None}
    return settings.model_copy(update=changes) if changes else settings


def check_device(settings: ChecksSection, options: CheckOptions | None) -> None:
    """Before a build merges anything: a measured pass asked to run on a missing GPU is an
    environment error now (exit 1), not after the merge."""
    settings = with_options(settings, options or CheckOptions())
    if settings.measure and settings.device != "cpu":
        from publisher.check.measure import resolve_device

        resolve_device(settings.device)


def check_build(
    build_dir: Path,
    *,
    settings: ChecksSection | None = None,
    options: CheckOptions | None = None,
    log: Callable[[str], None] | None = None,
    reads: ReadsFor | None = None,
) -> CheckReport:
    """Run every check on ``build_dir``, write ``checks.json`` there and return the report.

    ``reads`` gives the tensors' bytes of a streaming build, whose shards are header-only
    stubs (``check/recompute.py``); without it such a build is checked but not measured.
    """
    from publisher.hub.published import HEADER_ONLY_MARK

    build_dir = Path(build_dir)
    manifest = load_manifest(build_dir)
    settings = with_options(settings or settings_of(build_dir), options or CheckOptions())
    say = log or (lambda _m: None)
    if (build_dir / HEADER_ONLY_MARK).is_file():
        raise PublisherError(
            "a header-only copy of a published build holds no weights to check",
            where=str(build_dir),
            fix="check the build folder itself",
        )
    if settings.measure:
        from publisher.check.measure import resolve_device

        resolve_device(settings.device)  # before anything: a missing GPU is an environment error
    findings: list[Finding] = []
    for v in manifest.variants:
        folder = build_dir / v.folder if v.folder else build_dir
        findings += check_model_folder(folder, v.name, build_dir)
    note = None
    stubs = _header_only_shards(build_dir) if settings.measure and not findings else []
    if stubs and reads is not None:
        say("measuring the streamed build from its parents: each tensor computed again and checked against "
            "the sha256 of the published one")
        stubs = []
    if stubs:
        note = (
            f"not measured: this is a streaming build (build --publish, release --stream), whose shards were uploaded "
            f"as they were written and only their headers kept ({stubs[0]}), so no weights are here to run; "
            "its build measured it before publishing, from the parents (the checks.json it published)"
        )
        say(note)
    measured = settings.measure and not findings and not stubs
    result = None
    if measured:
        from publisher.check.measure import Target, measure

        targets = [Target("merged", build_dir, ".")]
        targets += [Target(v.name, build_dir / v.folder, v.folder, compare=True) for v in manifest.variants if v.folder]
        if settings.with_parents:
            targets += _parent_targets(build_dir, [i.ref for i in manifest.inputs], say)
        result = measure(targets, tokens=settings.tokens, device=settings.device, log=say, reads=reads)
        findings += result.findings
        findings += apply_thresholds(settings, result.measurements, _vocab_size(build_dir))
    report = CheckReport(
        tool=f"publisher {__version__}",
        checked=datetime.now(UTC).replace(microsecond=0),
        manifest_sha256=manifest_sha256(build_dir),
        passed=not findings,
        measured=bool(result and result.measurements),
        device=settings.device,
        text=result.text if result else None,
        measurements=result.measurements if result else [],
        findings=findings,
        thresholds=thresholds_of(settings),
        note=note,
    )
    write_report(build_dir, report)
    return report


def _header_only_shards(build_dir: Path) -> list[str]:
    """Shards that are a header over a hole (streaming builds free them once uploaded)."""
    out = []
    for path in sorted(build_dir.rglob("*.safetensors")):
        if any(part.startswith(".") for part in path.relative_to(build_dir).parts):
            continue  # a streaming build's .parents/ header copies are not the build's weights
        st = path.stat()
        if st.st_blocks * 512 < st.st_size - 4096:
            out.append(str(path.relative_to(build_dir)))
    return out


def _parent_targets(build_dir: Path, refs: list[str], say: Callable[[str], None]) -> list[Target]:
    """Each parent's folder on this machine, as the build recorded it (build.json)."""
    from publisher.check.measure import Target

    record = load_build_record(build_dir)
    folders = record.parent_folders if record is not None else {}
    out = []
    for ref in refs:
        folder = folders.get(ref)
        if folder is None or not Path(folder).is_dir():
            say(f"parent {ref}: its folder is not on this machine (build.json); not measured")
            continue
        out.append(Target(f"parent {ref}", Path(folder), ref))
    return out


def _vocab_size(build_dir: Path) -> int | None:
    try:
        config = json.loads((build_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = text_config(config).get("vocab_size") if isinstance(config, dict) else None
    return value if isinstance(value, int) else None
