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

import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import git
from git.objects.fun import tree_entries_from_data, tree_to_stream
from gitdb import IStream

from publisher.hub.ids import InvalidName, check_path_in_repo, check_ref_name
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    PreconditionFailed,
    RevisionNotFound,
)
from publisher.hub.server.faults import Faults
from publisher.hub.server.lfs import LfsStore

REPO_TYPES = ("model", "dataset", "space")
MAIN = "main"
FILE_MODE = 0o100644
DIR_MODE = 0o040000
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
LFS_POINTER_RE = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n$"
)
DEFAULT_GITATTRIBUTES = "".join(
    f"{p} filter=lfs diff=lfs merge=lfs -text\n"
    for p in ["*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*"]
)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class RepoKey:
    repo_type: str  # model | dataset | space
    namespace: str
    name: str

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def url_prefix(self) -> str:
        return "" if self.repo_type == "model" else f"{self.repo_type}s/"


@dataclass(frozen=True)
class LfsInfo:
    oid: str
    size: int
    pointer_size: int


@dataclass(frozen=True)
class Entry:
    path: str
    blob_id: str  # git sha1 of the stored blob (the pointer, for LFS files)
    size: int  # size of the file's content
    lfs: LfsInfo | None

    @property
    def etag(self) -> str:
        return self.lfs.oid if self.lfs else self.blob_id


@dataclass(frozen=True)
class CommitInfo:
    id: str
    parents: tuple[str, ...]
    tree: str
    title: str
    message: str
    author: str
    timestamp: int

    @property
    def date(self) -> str:
        return iso(self.timestamp)


@dataclass
class Snapshot:
    """Every file of one commit. Commits are immutable, so snapshots are cached forever."""

    commit: CommitInfo
    files: dict[str, Entry]
    dirs: dict[str, str]  # folder path → tree id

    def listing(self, prefix: str, recursive: bool) -> list[Entry | tuple[str, str]]:
        """Files (Entry) and folders ((path, tree id)) under ``prefix``, in path order."""
        base = f"{prefix}/" if prefix else ""
        out: list[tuple[str, Entry | tuple[str, str]]] = []
        for path, entry in self.files.items():
            if path.startswith(base) and (recursive or "/" not in path[len(base) :]):
                out.append((path, entry))
        for path, tree in self.dirs.items():
            if path and path.startswith(base) and (recursive or "/" not in path[len(base) :]):
                out.append((path, (path, tree)))
        return [item for _, item in sorted(out, key=lambda kv: kv[0])]


@dataclass(frozen=True)
class AddFile:
    path: str
    content: bytes


@dataclass(frozen=True)
class AddLfs:
    path: str
    oid: str
    size: int | None


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | AddLfs | DeleteFile | DeleteFolder


@dataclass
class RepoMeta:
    private: bool
    created_at: float
    created_by: str

    def to_json(self) -> str:
        return json.dumps({"private": self.private, "created_at": self.created_at, "created_by": self.created_by})



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
        data = json.loads((self.path / "hub-meta.json").read_text())
        return RepoMeta(bool(data["private"]), float(data["created_at"]), str(data["created_by"]))

    def set_private(self, private: bool) -> None:
        with self.lock:
            self.meta.private = private
            write_atomic(self.path / "hub-meta.json", self.meta.to_json().encode())

    # ---------------------------------------------------------------- objects
    def _store(self, kind: bytes, data: bytes) -> bytes:
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
                m = LFS_POINTER_RE.match(odb.stream(binsha).read())
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
        for kind in ("heads", "tags"):
            root = base / kind
            if not root.is_dir():
                continue
            for f in sorted(root.rglob("*")):
                if not f.is_file() or f.name.startswith(".tmp-"):
                    continue
                name = f"refs/{kind}/{f.relative_to(root).as_posix()}"
                target = f.read_text().strip()
                if not SHA_RE.match(target):
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
            while parent != self.path / "refs" and parent.name not in ("heads", "tags"):
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

    def branch_head(self, branch: str) -> str | None:
        return self.refs().get(f"refs/heads/{branch}")

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
        if SHORT_SHA_RE.match(rev):
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
            head = self.branch_head(branch)
            if head is None:
                raise RevisionNotFound(branch)
            if parent and not head.startswith(parent.lower()):
                raise PreconditionFailed("A commit has happened since. Please refresh and try again.")
            files = dict(self.snapshot(head).files)
            for op in operations:
                self._apply(op, files, head)
            dirs: dict[str, str] = {}
            tree = self._write_tree({p: e.blob_id for p, e in files.items()}, dirs)
            message = summary if not description else f"{summary}\n\n{description}"
            commit_id = self._write_commit(tree, [head], message, author)
            # the new snapshot is known already: cache it rather than re-reading every blob
            self._snapshots.put(commit_id, Snapshot(self.commit_info(commit_id), files, dirs))
            self.faults.point("commit.before-ref", repo=self.key.repo_id)
            self._write_ref(f"refs/heads/{branch}", commit_id)
            self.faults.point("commit.after-ref", repo=self.key.repo_id)
            return commit_id

    def _apply(self, op: Operation, blobs: dict[str, Entry], head: str) -> None:
        try:
            check_path_in_repo(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
        except InvalidName as e:
            raise BadRequest(str(e)) from e
        if isinstance(op, AddFile):
            blobs[op.path] = Entry(op.path, self._store(b"blob", op.content).hex(), len(op.content), None)
        elif isinstance(op, AddLfs):
            size = self.lfs.linked_size(self.path, op.oid)
            if size is None:
                raise BadRequest(f"LFS object {op.oid} for {op.path} was not uploaded to this repo")
            if op.size is not None and op.size != size:
                raise BadRequest(f"LFS object {op.oid} has size {size}, not {op.size}")
            pointer = lfs_pointer(op.oid, size)
            blob = self._store(b"blob", pointer).hex()
            blobs[op.path] = Entry(op.path, blob, size, LfsInfo(op.oid, size, len(pointer)))
        elif isinstance(op, DeleteFile):
            if op.path not in blobs:
                raise EntryNotFound(op.path, head, "A file with this name doesn't exist")
            del blobs[op.path]
        else:
            prefix = op.path.rstrip("/") + "/"
            doomed = [p for p in blobs if p.startswith(prefix)]
            if not doomed:
                raise EntryNotFound(op.path, head, "A folder with this name doesn't exist")
            for p in doomed:
                del blobs[p]

    def _write_tree(self, blobs: dict[str, str], dirs: dict[str, str] | None = None) -> str:
        """Write the trees for ``{path: blob id}``; ``dirs`` receives ``{folder: tree id}``."""
        root: dict[str, Any] = {}
        for path, blob in blobs.items():
            node = root
            *folders, leaf = path.split("/")
            for i, folder in enumerate(folders):
                child = node.setdefault(folder, {})
                if not isinstance(child, dict):
                    raise BadRequest(f"cannot add {path}: {'/'.join(folders[: i + 1])} is a file")
                node = child
            if isinstance(node.get(leaf), dict):
                raise BadRequest(f"cannot add {path}: it is a folder")
            node[leaf] = blob

        def write(node: dict[str, Any], prefix: str) -> bytes:
            entries = []
            for name, value in node.items():
                if isinstance(value, dict):
                    entries.append((write(value, f"{prefix}{name}/"), DIR_MODE, name))
                else:
                    entries.append((bytes.fromhex(value), FILE_MODE, name))
            # git orders a folder as if its name ended with '/'
            entries.sort(key=lambda e: e[2].encode() + (b"/" if e[1] == DIR_MODE else b""))
            buf = BytesIO()
            tree_to_stream(entries, buf.write)
            binsha = self._store(b"tree", buf.getvalue())
            if dirs is not None:
                dirs[prefix.rstrip("/")] = binsha.hex()
            return binsha

        return write(root, "").hex()

    def _write_commit(self, tree: str, parents: list[str], message: str, author: str) -> str:
        actor = git.Actor(author, f"{author}@users.noreply.localhub")
        commit = git.Commit.create_from_tree(
            self.git,
            git.Tree(self.git, bytes.fromhex(tree)),
            message,
            parent_commits=[git.Commit(self.git, bytes.fromhex(p)) for p in parents],
            head=False,
            author=actor,
            committer=actor,
            author_date=datetime.now(UTC),
            commit_date=datetime.now(UTC),
        )
        return str(commit.hexsha)

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
                ref_target = self._store(b"tag", obj.encode()).hex()
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
        blob = self._store(b"blob", DEFAULT_GITATTRIBUTES.encode()).hex()
        tree = self._write_tree({".gitattributes": blob})
        commit = self._write_commit(tree, [], "initial commit", "system")
        self._write_ref(f"refs/heads/{MAIN}", commit)
        return commit


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
