"""Building commits: apply operations to a file list, write the trees and the commit object.

Objects are content-addressed and written before any ref moves, so a crash here leaves only
unreferenced objects behind.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any

import git
from git.objects.fun import tree_to_stream

from publisher.hub.ids import InvalidName, check_path_in_repo
from publisher.hub.server.errors import BadRequest, EntryNotFound
from publisher.hub.server.objects import (
    DIR_MODE,
    FILE_MODE,
    AddFile,
    AddLfs,
    DeleteFile,
    DeleteFolder,
    Entry,
    LfsInfo,
    Operation,
    lfs_pointer,
)

if TYPE_CHECKING:
    from publisher.hub.server.repo import Repo


def apply(repo: Repo, op: Operation, blobs: dict[str, Entry], head: str) -> None:
    """Change ``blobs`` (path → entry) by one operation; 400/404 on a bad one."""
    try:
        check_path_in_repo(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
    except InvalidName as e:
        raise BadRequest(str(e)) from e
    if isinstance(op, AddFile):
        blobs[op.path] = Entry(op.path, repo.store_object(b"blob", op.content).hex(), len(op.content), None)
    elif isinstance(op, AddLfs):
        size = repo.lfs.linked_size(repo.path, op.oid)
        if size is None:
            raise BadRequest(f"LFS object {op.oid} for {op.path} was not uploaded to this repo")
        if op.size is not None and op.size != size:
            raise BadRequest(f"LFS object {op.oid} has size {size}, not {op.size}")
        pointer = lfs_pointer(op.oid, size)
        blob = repo.store_object(b"blob", pointer).hex()
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

def write_tree(repo: Repo, blobs: dict[str, str], dirs: dict[str, str] | None = None) -> str:
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
        binsha = repo.store_object(b"tree", buf.getvalue())
        if dirs is not None:
            dirs[prefix.rstrip("/")] = binsha.hex()
        return binsha

    return write(root, "").hex()

def write_commit(repo: Repo, tree: str, parents: list[str], message: str, author: str) -> str:
    """A commit object (no ref moves): its id."""
    actor = git.Actor(author, f"{author}@users.noreply.localhub")
    commit = git.Commit.create_from_tree(
        repo.git,
        git.Tree(repo.git, bytes.fromhex(tree)),
        message,
        parent_commits=[git.Commit(repo.git, bytes.fromhex(p)) for p in parents],
        head=False,
        author=actor,
        committer=actor,
        author_date=datetime.now(UTC),
        commit_date=datetime.now(UTC),
    )
    return str(commit.hexsha)
