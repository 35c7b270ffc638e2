"""Which commit last changed a path (``expand=True`` on tree listings and paths-info).

Walks first-parent history from the listed commit, newest first, and stops as soon as every
asked-for path is explained: a path's last commit is the newest one whose file (blob id) or
folder (tree id) differs from its parent's. Snapshots are cached per commit, so listing the
pages of one folder walks the history once.
"""

from __future__ import annotations

from collections.abc import Iterable

from publisher.hub.server.objects import CommitInfo, Snapshot
from publisher.hub.server.repo import Repo


def _object_at(snap: Snapshot | None, path: str) -> str | None:
    if snap is None:
        return None
    entry = snap.files.get(path)
    if entry is not None:
        return entry.blob_id
    return snap.dirs.get(path)


def last_commits(repo: Repo, head: str, paths: Iterable[str]) -> dict[str, CommitInfo]:
    pending = set(paths)
    found: dict[str, CommitInfo] = {}
    for commit in repo.history(head):
        if not pending:
            break
        snap = repo.snapshot(commit.id)
        parent = repo.snapshot(commit.parents[0]) if commit.parents else None
        for path in list(pending):
            if _object_at(snap, path) != _object_at(parent, path):
                found[path] = commit
                pending.discard(path)
    return found


def last_commit_item(commit: CommitInfo) -> dict[str, str]:
    return {"id": commit.id, "title": commit.title, "date": commit.date}
