"""Repositories on disk: one bare git repository per Hub repo, written with gitpython.

Why git: commit ids, blob ids and LFS pointers are then exactly the Hub's (it *is* git),
history and tags are ordinary git history and annotated tags that any ``git`` can inspect or
clone, and atomicity comes from git's own design: objects are content-addressed and written
first, and a commit becomes visible only when its branch file is replaced in one
``os.replace``. A crash at any point leaves either the old ref or the new one, and only
unreferenced objects behind. Refs are written by this module (not by gitpython's lock-file
writer) so a killed server never leaves a stale ``.lock`` that blocks the next commit.

Layout::

    ROOT/repos/{models,datasets,spaces}/NS/NAME.git/   bare repo, plus hub-meta.json
         .../NAME.git/lfs/objects/aa/bb/OID            hard links to ROOT/lfs/objects (this
                                                       repo may reference OID)
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import git

from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.errors import Conflict
from publisher.hub.server.faults import Faults
from publisher.hub.server.lfs import LfsStore
from publisher.hub.server.objects import (
    MAIN,
    REPO_TYPES,
    AddFile,
    AddLfs,
    CommitInfo,
    DeleteFile,
    DeleteFolder,
    Entry,
    LfsInfo,
    Operation,
    RepoKey,
    RepoMeta,
    Snapshot,
    git_blob_id,
    iso,
    lfs_pointer,
)
from publisher.hub.server.repo import HandlePool, Repo

__all__ = [
    "AddFile", "AddLfs", "CommitInfo", "DeleteFile", "DeleteFolder", "Entry", "HandlePool", "LfsInfo",
    "Operation", "Repo", "RepoKey", "RepoMeta", "Snapshot", "Store", "git_blob_id", "iso", "lfs_pointer",
]


@dataclass
class Store:
    """All repos under ``root``; repo creation and deletion are atomic directory renames."""

    root: Path
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.lfs = LfsStore(self.root / "lfs", self.tmp)
        self._repos: dict[RepoKey, Repo] = {}
        self._lock = threading.Lock()
        self.pool = HandlePool()

    def recover(self) -> None:
        """After a crash: drop half-written temp files and repos that were being created/deleted."""
        for child in self.tmp.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        for tmp in (self.root / "repos").glob("*/*/*.git/refs/**/.tmp-*"):
            tmp.unlink(missing_ok=True)
        for meta in (self.root / "repos").glob("*/*/*.git/.tmp-*"):
            meta.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop every repo's ``git cat-file`` helpers (the server is stopping)."""
        with self._lock:
            for repo in self._repos.values():
                with repo.lock:
                    repo.close()

    def _path(self, key: RepoKey) -> Path:
        return self.root / "repos" / f"{key.repo_type}s" / key.namespace / f"{key.name}.git"

    def get(self, key: RepoKey) -> Repo | None:
        with self._lock:
            repo = self._repos.get(key)
            if repo is not None:
                return repo
            path = self._path(key)
            if not (path / "hub-meta.json").is_file():
                return None
            repo = Repo(key, path, self.lfs, self.faults, self.pool)
            self._repos[key] = repo
            return repo

    def create(self, key: RepoKey, *, private: bool, author: str) -> Repo:
        with self._lock:
            final = self._path(key)
            if final.exists() or self._exists_case_insensitive(key):
                raise Conflict("You already created this model repo")
            staging = self.tmp / f"create-{uuid.uuid4().hex}"
            git.Repo.init(staging, bare=True, mkdir=True)
            (staging / "HEAD").write_text(f"ref: refs/heads/{MAIN}\n")
            meta = RepoMeta(private, datetime.now(UTC).timestamp(), author)
            write_atomic(staging / "hub-meta.json", meta.to_json().encode())
            seed = Repo(key, staging, self.lfs, self.faults)
            with seed.lock:
                seed.initial_commit(author)
                seed.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
            repo = Repo(key, final, self.lfs, self.faults, self.pool)
            self._repos[key] = repo
            return repo

    def move(self, source: RepoKey, target: RepoKey) -> Repo:
        """Rename a repo (another name or namespace): one directory rename, LFS links move with it."""
        with self._lock:
            final = self._path(target)
            if final.exists() or (self._exists_case_insensitive(target) and source.repo_id.lower() != target.repo_id.lower()):
                raise Conflict(f"{target.repo_id} already exists")
            old = self._repos.pop(source, None)
            if old is not None:
                with old.lock:  # in-flight writes finish first
                    old.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self._path(source), final)
            repo = Repo(target, final, self.lfs, self.faults, self.pool)
            self._repos[target] = repo
            return repo

    def duplicate(self, source: Repo, target: RepoKey, *, private: bool, author: str) -> Repo:
        """A copy of ``source``'s branches and tags (not its pull requests) under ``target``.

        Git objects and LFS objects are immutable, so they are hard-linked, not copied; refs and
        metadata are copied. The copy is staged in ``tmp`` and renamed into place complete.
        """
        staging = self.tmp / f"duplicate-{uuid.uuid4().hex}"

        def link_or_copy(src: str, dst: str) -> None:
            rel = Path(src).relative_to(source.path).parts
            if rel[0] in ("objects", "lfs"):
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)

        with source.lock:
            shutil.copytree(source.path, staging, copy_function=link_or_copy)
        shutil.rmtree(staging / "refs" / "pr", ignore_errors=True)
        (staging / "hub-discussions.json").unlink(missing_ok=True)
        meta = RepoMeta(private, datetime.now(UTC).timestamp(), author)
        write_atomic(staging / "hub-meta.json", meta.to_json().encode())
        with self._lock:
            final = self._path(target)
            if final.exists() or self._exists_case_insensitive(target):
                shutil.rmtree(staging, ignore_errors=True)
                raise Conflict(f"{target.repo_id} already exists")
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
            repo = Repo(target, final, self.lfs, self.faults, self.pool)
            self._repos[target] = repo
            return repo

    def _exists_case_insensitive(self, key: RepoKey) -> bool:
        """The Hub treats repo ids case-insensitively for uniqueness."""
        return any(k.repo_id.lower() == key.repo_id.lower() for k in self.list_keys(key.repo_type))

    def delete(self, key: RepoKey) -> None:
        with self._lock:
            path = self._path(key)
            old = self._repos.pop(key, None)
            if old is not None:
                with old.lock:
                    old.close()
            doomed = self.tmp / f"delete-{uuid.uuid4().hex}"
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def list_keys(self, repo_type: str | None = None) -> list[RepoKey]:
        out = []
        for rtype in REPO_TYPES if repo_type is None else (repo_type,):
            base = self.root / "repos" / f"{rtype}s"
            for meta in sorted(base.glob("*/*.git/hub-meta.json")):
                repo_dir = meta.parent
                out.append(RepoKey(rtype, repo_dir.parent.name, repo_dir.name[: -len(".git")]))
        return out
