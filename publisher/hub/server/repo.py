"""One Hub repo as a bare git repository: its objects, snapshots, refs and commits.

Refs are written here (not by gitpython's lock-file writer) so a killed server never leaves a
stale ``.lock`` that blocks the next commit; a commit becomes visible only when its branch
file is replaced in one ``os.replace``. Trees and commit objects are built in ``commits``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import git
from git.objects.fun import tree_entries_from_data
from gitdb import IStream

from publisher.hub.ids import InvalidName, check_ref_name
from publisher.hub.server import commits, discussions
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.errors import BadRequest, Conflict, PreconditionFailed, RevisionNotFound
from publisher.hub.server.faults import Faults
from publisher.hub.server.lfs import LfsStore
from publisher.hub.server.objects import (
    DEFAULT_GITATTRIBUTES,
    LFS_POINTER_RE,
    MAIN,
    SHA_RE,
    SHORT_SHA_RE,
    CommitInfo,
    Entry,
    Gated,
    LfsInfo,
    Operation,
    RepoKey,
    RepoMeta,
    Snapshot,
)

REF_KINDS = ("heads", "tags", "pr")  # refs/pr/N: pull requests, as on the Hub
PR_REF = re.compile(r"refs/pr/[1-9][0-9]{0,8}")


def branch_ref(name: str) -> str:
    """A branch name, or a pull request's full ref ``refs/pr/N``, as a full ref."""
    return name if PR_REF.fullmatch(name) else f"refs/heads/{name}"


class _Lru(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_or(self, key: str) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class HandlePool:
    """Keeps at most ``size`` gitpython handles open: each holds ``git cat-file`` processes."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._open: OrderedDict[int, Repo] = OrderedDict()
        self._mutex = threading.Lock()

    def touch(self, repo: Repo) -> None:
        with self._mutex:
            self._open[id(repo)] = repo
            self._open.move_to_end(id(repo))
            victims = list(self._open.values())[: max(0, len(self._open) - self.size)]
        for victim in victims:
            # never wait for a busy repo: it will be closed on a later eviction
            if victim.lock.acquire(blocking=False):
                try:
                    victim.close()
                finally:
                    victim.lock.release()
                with self._mutex:
                    self._open.pop(id(victim), None)


class Repo:
    """One Hub repo. Writes are serialised by ``lock``; reads use immutable, cached snapshots.

    Every use of the gitpython handle (``self.git``) happens under ``lock``: its object
    database talks to one ``git cat-file --batch`` process, which is not thread-safe.
    """

    def __init__(self, key: RepoKey, path: Path, lfs: LfsStore, faults: Faults, pool: HandlePool | None = None) -> None:
        self.key = key
        self.path = path
        self.lfs = lfs
        self.faults = faults
        self.pool = pool
        self.lock = threading.RLock()
        self._git: git.Repo | None = None
        self._refs: dict[str, str] | None = None  # "refs/heads/main" → commit id (peeled)
        self._tag_objects: dict[str, str] = {}  # "refs/tags/x" → tag object id
        self._reachable: set[str] | None = None
        self._snapshots = _Lru(64)
        self._commits = _Lru(4096)
        self._blobs = _Lru(256)
        self.meta = self._read_meta()

    @property
    def git(self) -> git.Repo:
        if self._git is None:
            self._git = git.Repo(self.path)
        if self.pool is not None:
            self.pool.touch(self)
        return self._git

    def close(self) -> None:
        if self._git is not None:
            self._git.close()
            self._git = None

    # ---------------------------------------------------------------- metadata
    def _read_meta(self) -> RepoMeta:
        return RepoMeta.from_json((self.path / "hub-meta.json").read_text())

    def set_private(self, private: bool) -> None:
        self.update_settings(private=private)

    def update_settings(self, *, private: bool | None = None, gated: Gated | None = None) -> None:
        """Change visibility and/or gating (None: unchanged), stored atomically."""
        with self.lock:
            if private is not None:
                self.meta.private = private
            if gated is not None:
                self.meta.gated = gated
            write_atomic(self.path / "hub-meta.json", self.meta.to_json().encode())

    # ---------------------------------------------------------------- objects
    def store_object(self, kind: bytes, data: bytes) -> bytes:
        """Write one git object (caller holds the lock); its binary id."""
        return bytes(self.git.odb.store(IStream(kind, len(data), BytesIO(data))).binsha)

    def read_blob(self, blob_id: str) -> bytes:
        cached = self._blobs.get_or(blob_id)
        if cached is not None:
            return bytes(cached)
        with self.lock:
            data = bytes(self.git.odb.stream(bytes.fromhex(blob_id)).read())
        if len(data) <= (1 << 20):
            self._blobs.put(blob_id, data)
        return data

    def commit_info(self, commit_id: str) -> CommitInfo:
        cached = self._commits.get_or(commit_id)
        if cached is not None:
            return cached
        with self.lock:
            c = git.Commit(self.git, bytes.fromhex(commit_id))
            message = c.message if isinstance(c.message, str) else c.message.decode("utf-8", "replace")
            info = CommitInfo(
                id=commit_id,
                parents=tuple(p.hexsha for p in c.parents),
                tree=c.tree.hexsha,
                title=message.split("\n", 1)[0],
                message=message.split("\n", 1)[1].lstrip("\n") if "\n" in message else "",
                author=c.author.name or "",
                timestamp=int(c.authored_date),
            )
        self._commits.put(commit_id, info)
        return info

    def snapshot(self, commit_id: str) -> Snapshot:
        cached = self._snapshots.get_or(commit_id)
        if cached is not None:
            return cached
        commit = self.commit_info(commit_id)
        files: dict[str, Entry] = {}
        dirs: dict[str, str] = {"": commit.tree}
        with self.lock:
            self._walk(commit.tree, "", files, dirs)
        snap = Snapshot(commit, files, dirs)
        self._snapshots.put(commit_id, snap)
        return snap

    def _walk(self, tree_id: str, prefix: str, files: dict[str, Entry], dirs: dict[str, str]) -> None:
        odb = self.git.odb
        data = odb.stream(bytes.fromhex(tree_id)).read()
        for binsha, mode, name in tree_entries_from_data(data):
            path = f"{prefix}{name}"
            hexsha = binsha.hex()
            if mode >> 12 == 4:
                dirs[path] = hexsha
                self._walk(hexsha, f"{path}/", files, dirs)
                continue
            size = odb.info(binsha).size
            lfs = None
            if size < 200:
                m = LFS_POINTER_RE.fullmatch(odb.stream(binsha).read())
                if m:
                    lfs = LfsInfo(m.group(1).decode(), int(m.group(2)), size)
            files[path] = Entry(path, hexsha, lfs.size if lfs else size, lfs)

    # ---------------------------------------------------------------- refs
    def refs(self) -> dict[str, str]:
        with self.lock:
            if self._refs is None:
                self._refs = self._load_refs()
            return dict(self._refs)

    def _load_refs(self) -> dict[str, str]:
        refs: dict[str, str] = {}
        base = self.path / "refs"
        for kind in REF_KINDS:
            root = base / kind
            if not root.is_dir():
                continue
            for f in sorted(root.rglob("*")):
                if not f.is_file() or f.name.startswith(".tmp-"):
                    continue
                name = f"refs/{kind}/{f.relative_to(root).as_posix()}"
                target = f.read_text().strip()
                if not SHA_RE.fullmatch(target):
                    continue
                refs[name] = self._peel(name, target)
        return refs

    def _peel(self, name: str, target: str) -> str:
        info = self.git.odb.info(bytes.fromhex(target))
        if info.type == b"tag":
            self._tag_objects[name] = target
            data = self.git.odb.stream(bytes.fromhex(target)).read()
            m = re.match(rb"object ([0-9a-f]{40})\n", data)
            if m is None:
                raise ValueError(f"corrupt tag object {target}")
            return m.group(1).decode()
        return target

    def tag_message(self, tag: str) -> str | None:
        obj = self._tag_objects.get(f"refs/tags/{tag}")
        if obj is None:
            return None
        with self.lock:
            data = self.git.odb.stream(bytes.fromhex(obj)).read().decode("utf-8", "replace")
        return data.split("\n\n", 1)[1].rstrip("\n") if "\n\n" in data else ""

    def _write_ref(self, name: str, target: str | None) -> None:
        """Point ``name`` at ``target`` (None: delete), atomically. Caller holds the lock."""
        path = self.path / name
        if target is None:
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != self.path / "refs" and parent.name not in REF_KINDS:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, f"{target}\n".encode())
        self._refs = None
        self._reachable = None

    def _check_new_ref(self, full: str) -> None:
        for existing in self.refs():
            if existing == full:
                raise Conflict(f"Reference already exists: {full}")
            if existing.startswith(f"{full}/") or full.startswith(f"{existing}/"):
                raise Conflict(f"Reference {full} conflicts with existing {existing}")

    def modified_ns(self, branch: str = MAIN) -> int:
        """When ``branch`` last moved (its ref file's mtime), for sorting by last modification."""
        try:
            return (self.path / branch_ref(branch)).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def branch_head(self, branch: str) -> str | None:
        """The commit a branch (or a pull request's ``refs/pr/N``) points at."""
        return self.refs().get(branch_ref(branch))

    def reachable(self) -> set[str]:
        with self.lock:
            if self._reachable is None:
                seen: set[str] = set()
                stack = list(self.refs().values())
                while stack:
                    c = stack.pop()
                    if c in seen:
                        continue
                    seen.add(c)
                    stack.extend(self.commit_info(c).parents)
                self._reachable = seen
            return set(self._reachable)

    def resolve(self, revision: str) -> str:
        """A branch, tag, full or short commit id → a commit id reachable from a ref."""
        refs = self.refs()
        for full in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
            if full in refs:
                return refs[full]
        rev = revision.lower()
        if SHORT_SHA_RE.fullmatch(rev):
            reachable = self.reachable()
            if len(rev) == 40:
                if rev in reachable:
                    return rev
            else:
                matches = [c for c in reachable if c.startswith(rev)]
                if len(matches) == 1:
                    return matches[0]
        raise RevisionNotFound(revision)

    def history(self, commit_id: str) -> Iterator[CommitInfo]:
        """First-parent history, newest first (the server only ever makes linear history)."""
        current: str | None = commit_id
        while current:
            info = self.commit_info(current)
            yield info
            current = info.parents[0] if info.parents else None

    # ---------------------------------------------------------------- writes
    def commit(
        self,
        branch: str,
        operations: Iterable[Operation],
        *,
        summary: str,
        description: str,
        parent: str | None,
        author: str,
    ) -> str:
        """Apply ``operations`` on top of ``branch`` as one commit; 412 if ``parent`` is stale."""
        with self.lock:
            head = self._head_for_commit(branch, parent)
            commit_id = self._build_commit(head, operations, summary, description, author)
            self.faults.point("commit.before-ref", repo=self.key.repo_id)
            self._write_ref(branch_ref(branch), commit_id)
            self.faults.point("commit.after-ref", repo=self.key.repo_id)
            return commit_id

    def open_pull_request(
        self,
        base: str,
        operations: Iterable[Operation],
        *,
        title: str,
        description: str,
        parent: str | None,
        author: str,
    ) -> tuple[str, int]:
        """A new ``refs/pr/N`` off ``base``: with the operations as its commit, or at base's head
        when there are none. Returns the ref's commit and N."""
        ops = list(operations)
        with self.lock:
            head = self._head_for_commit(base, parent)
            commit_id = self._build_commit(head, ops, title, description, author) if ops else head
            records = discussions.load(self.path)
            taken = [p.num for p in records] + [int(r.rsplit("/", 1)[1]) for r in self.refs() if PR_REF.fullmatch(r)]
            num = max(taken, default=0) + 1
            self._write_ref(f"refs/pr/{num}", commit_id)
            now = datetime.now(UTC).timestamp()
            records.append(discussions.PullRequest(num, title, description, author, base, now))
            discussions.save(self.path, records)
            return commit_id, num

    def pull_requests(self) -> list[discussions.PullRequest]:
        with self.lock:
            return discussions.load(self.path)

    def _head_for_commit(self, branch: str, parent: str | None) -> str:
        head = self.branch_head(branch)
        if head is None:
            raise RevisionNotFound(branch)
        if parent and not head.startswith(parent.lower()):
            raise PreconditionFailed("A commit has happened since. Please refresh and try again.")
        return head

    def _build_commit(self, head: str, operations: Iterable[Operation], summary: str, description: str,
                      author: str) -> str:
        """Write the objects of a commit on top of ``head`` (no ref moves). Caller holds the lock."""
        files = dict(self.snapshot(head).files)
        for op in operations:
            commits.apply(self, op, files, head)
        dirs: dict[str, str] = {}
        tree = commits.write_tree(self, {p: e.blob_id for p, e in files.items()}, dirs)
        message = summary if not description else f"{summary}\n\n{description}"
        commit_id = commits.write_commit(self, tree, [head], message, author)
        # the new snapshot is known already: cache it rather than re-reading every blob
        self._snapshots.put(commit_id, Snapshot(self.commit_info(commit_id), files, dirs))
        return commit_id

    def squash(self, branch: str, message: str, author: str) -> str:
        """Replace ``branch``'s history by one root commit with its current files (super-squash)."""
        with self.lock:
            head = self._head_for_commit(branch, None)
            commit_id = commits.write_commit(self, self.commit_info(head).tree, [], message, author)
            self._write_ref(branch_ref(branch), commit_id)
            return commit_id

    def create_tag(self, tag: str, revision: str, message: str | None, author: str) -> str:
        try:
            check_ref_name(tag, "tag")
        except InvalidName as e:
            raise BadRequest(str(e)) from e
        with self.lock:
            target = self.resolve(revision)
            full = f"refs/tags/{tag}"
            self._check_new_ref(full)
            ref_target = target
            if message:
                now = int(datetime.now(UTC).timestamp())
                obj = (
                    f"object {target}\ntype commit\ntag {tag}\n"
                    f"tagger {author} <{author}@users.noreply.localhub> {now} +0000\n\n{message}\n"
                )
                ref_target = self.store_object(b"tag", obj.encode()).hex()
            self._write_ref(full, ref_target)
            return target

    def delete_ref(self, kind: str, name: str) -> None:
        with self.lock:
            full = f"refs/{kind}/{name}"
            if full not in self.refs():
                raise RevisionNotFound(name)
            if full == f"refs/heads/{MAIN}":
                raise BadRequest("the main branch cannot be deleted")
            self._write_ref(full, None)
            self._tag_objects.pop(full, None)

    def create_branch(self, branch: str, starting_point: str | None) -> str:
        try:
            check_ref_name(branch, "branch")
        except InvalidName as e:
            raise BadRequest(str(e)) from e
        with self.lock:
            target = self.resolve(starting_point or MAIN)
            self._check_new_ref(f"refs/heads/{branch}")
            self._write_ref(f"refs/heads/{branch}", target)
            return target

    def initial_commit(self, author: str) -> str:
        """The Hub's first commit of a new repo: a default .gitattributes, by ``system``."""
        blob = self.store_object(b"blob", DEFAULT_GITATTRIBUTES.encode()).hex()
        tree = commits.write_tree(self, {".gitattributes": blob})
        commit = commits.write_commit(self, tree, [], "initial commit", "system")
        self._write_ref(f"refs/heads/{MAIN}", commit)
        return commit
