"""Value types of the repo store: repo keys, commits, file entries, snapshots, commit operations.

Plain frozen dataclasses with no I/O, shared by the store, the routes and the views, so a
module that only shapes JSON never imports git.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

REPO_TYPES = ("model", "dataset", "space")
MAIN = "main"
FILE_MODE = 0o100644
DIR_MODE = 0o040000
SHA_RE = re.compile(r"\A[0-9a-f]{40}\Z")  # \Z, not $: no trailing newline
SHORT_SHA_RE = re.compile(r"\A[0-9a-f]{7,40}\Z")
LFS_POINTER_RE = re.compile(
    rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n"
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


Gated = Literal["auto", "manual", False]


@dataclass
class RepoMeta:
    """``hub-meta.json``: what the Hub keeps about a repo outside git."""

    private: bool
    created_at: float
    created_by: str
    gated: Gated = False

    def to_json(self) -> str:
        return json.dumps(
            {"private": self.private, "created_at": self.created_at, "created_by": self.created_by, "gated": self.gated}
        )

    @classmethod
    def from_json(cls, text: str) -> RepoMeta:
        data = json.loads(text)
        gated = data.get("gated", False)
        return cls(
            bool(data["private"]),
            float(data["created_at"]),
            str(data["created_by"]),
            gated if gated in ("auto", "manual") else False,
        )
