"""Put big benchmark parents on a local Hub without copying them (hard links into its LFS store).

Uploading a 7B pair through HTTP would store a second 29 GB copy on a shared disk. Instead each
safetensors file is hard-linked into the server's object store and the repo (exactly where an
upload would land it), then the real client commits the folder: the LFS batch answers that the
objects are already there, so the commit carries only pointers. The server then serves those very
files like any uploaded ones. Used by the benchmarks only; tests upload for real.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi

from publisher.hub.server import LocalHub
from publisher.hub.server.storage import RepoKey
from publisher.standins import MistralShape, Recipe, generate_model

PARENT_REPOS = (("bench/parent-a", 1), ("bench/parent-b", 2))  # repo id, stand-in seed


def make_parent_pair(parents_dir: Path, shape: MistralShape) -> dict[str, Path]:
    """The two stand-in parents the streaming benchmarks put on their Hub: repo id -> folder."""
    return {
        repo: generate_model(parents_dir / repo.split("/")[1], shape, recipe=Recipe(seed=seed), max_shard_bytes=5_000_000_000)
        for repo, seed in PARENT_REPOS
    }


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(16 << 20):
            h.update(block)
    return h.hexdigest()


def seed_repo(server: LocalHub, api: HfApi, repo_id: str, folder: Path, shas: dict[str, str] | None = None) -> str:
    """Commit ``folder``'s files to ``repo_id``; big files by hard link. Returns the commit sha."""
    api.create_repo(repo_id, exist_ok=True)
    ns, name = repo_id.split("/")
    repo = server.app.store.get(RepoKey("model", ns, name))
    assert repo is not None
    ops = []
    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        op = CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f))
        if f.suffix == ".safetensors":
            oid = (shas or {}).get(f.name) or sha256_of(f)
            target = repo.lfs.object_path(oid)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(f, target)
            repo.lfs.link(repo.path, oid)
            op.upload_info.sha256 = bytes.fromhex(oid)
        ops.append(op)
    return str(api.create_commit(repo_id, ops, commit_message="benchmark parent").oid)
