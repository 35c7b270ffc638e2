"""What publishing a version to a repo would change: file diffs, plans, results.

Two files are the same when their sizes and sha256 (LFS) or git blob ids agree. Model cards
are also the same when their card identities agree (see ``publisher.card.identity``): a card
rendered on another day from the same inputs differs only in its date, which is no change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from publisher.check.results import CHECKS_FILE, same_checks
from publisher.errors import PublishError
from publisher.hub.local_build import CARD, LocalFile, VariantBuild

if TYPE_CHECKING:
    from huggingface_hub.hf_api import RepoFile

KEEP_REMOTE = frozenset({".gitattributes"})  # the repo's own, not part of a version
State = Literal["publish", "publish-landed", "tag-only", "card-update", "up-to-date", "conflict"]
# what describes a version rather than being it: may change under a tag (card re-renders, re-checks)
METADATA = frozenset({CARD, CHECKS_FILE})
RemoteText = Callable[[str], str | None]  # path in the repo -> its text at the compared commit


@dataclass(frozen=True)
class Change:
    path: str
    kind: Literal["add", "change", "delete"]
    size: int


@dataclass
class RepoPlan:
    build: VariantBuild
    tag: str
    private: bool
    exists: bool
    state: State
    base_commit: str | None = None  # main's head the commit goes on top of
    changes: list[Change] = field(default_factory=list)
    note: str = ""

    @property
    def repo_id(self) -> str:
        return self.build.repo_id


@dataclass
class RepoResult:
    repo_id: str
    variant: str
    tag: str
    action: str  # published | tagged | card updated | up to date | would publish | ...
    changes: list[Change]
    commit: str | None
    sent_bytes: int
    note: str = ""
    private: bool = False


@dataclass
class PublishReport:
    endpoint: str
    version: str
    dry_run: bool
    results: list[RepoResult]


def diff(local: dict[str, LocalFile], remote: dict[str, RepoFile], remote_text: RemoteText | None = None) -> list[Change]:
    """What turns ``remote`` into ``local``; ``remote_text`` lets cards be compared by identity."""
    changes = []
    for path, lf in sorted(local.items()):
        rf = remote.get(path)
        if rf is None:
            changes.append(Change(path, "add", lf.size))
        elif not _same(lf, rf) and not (path in METADATA and remote_text is not None and _same_metadata(lf, remote_text)):
            changes.append(Change(path, "change", lf.size))
    for path, rf in sorted(remote.items()):
        if path not in local and path not in KEEP_REMOTE:
            changes.append(Change(path, "delete", rf.size))
    return changes


def _same_metadata(lf: LocalFile, remote_text: RemoteText) -> bool:
    if lf.path == CHECKS_FILE:  # the release gate's report: the same facts, measured at another time
        theirs = remote_text(lf.path)
        return theirs is not None and same_checks(lf.source.read_text(encoding="utf-8", errors="replace"), theirs)
    return _same_card(lf, remote_text)


def _same_card(lf: LocalFile, remote_text: RemoteText) -> bool:
    """Two renderings of the same card inputs (they may differ in the date they show)."""
    from publisher.card.identity import card_identity

    mine = card_identity(lf.source.read_text(encoding="utf-8", errors="replace"))
    if mine is None:
        return False
    theirs = remote_text(lf.path)
    return theirs is not None and card_identity(theirs) == mine


def _same(lf: LocalFile, rf: RepoFile) -> bool:
    if rf.size != lf.size:
        return False
    if rf.lfs is not None:
        return bool(rf.lfs.sha256 == lf.sha256)
    return bool(rf.blob_id == lf.git_blob_id())


def _title(tag: str) -> str:
    return f"Publish {tag}"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def bump(version: str) -> str:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(.*)$", version)
    return f"{m.group(1)}.{m.group(2)}.{int(m.group(3)) + 1}" if m else f"{version}.1"


def _conflict(plan: RepoPlan) -> PublishError:
    version = plan.tag[1:]
    return PublishError(
        f"{plan.note}; a published tag is never moved",
        where=plan.repo_id,
        fix=f"bump `version:` in the recipe (e.g. {bump(version)}), rebuild and publish again",
    )


def _dry(plan: RepoPlan) -> RepoResult:
    action = {
        "publish": "would publish" if plan.exists else "would create and publish",
        "tag-only": "would tag",
        "publish-landed": "would tag",
        "card-update": "would update card",
        "up-to-date": "up to date",
        "conflict": "conflict",
    }[plan.state]
    sent = sum(c.size for c in plan.changes if c.kind != "delete")
    return RepoResult(plan.repo_id, plan.build.name, plan.tag, action, plan.changes, plan.base_commit, sent,
                      plan.note, plan.private)
