"""The range reader against the local Hub: any read order, repeats, every file hashed whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from publisher.hub.range_reader import RangeSource, remote_inputs
from publisher.hub.remote import Retry
from publisher.hub.remote_source import fetch_parent
from publisher.sources import ResolvedModel
from publisher.tensors import ModelFiles, TensorReader
from tests.streaming.conftest import Parents


def _resolved(parents: Parents, repo: str, tmp_path: Path) -> ResolvedModel:
    remote, path = fetch_parent(repo, None, tmp_path / "headers", where="test", endpoint=parents.url,
                                token=parents.token)
    return ResolvedModel(ref=repo, kind="hub", path=path, files=ModelFiles.open(path), repo_id=repo,
                         revision=remote.commit, remote=remote)


def test_reads_in_any_order_and_twice_give_the_bytes_and_the_whole_files_sha256(parents: Parents, tmp_path: Path) -> None:
    model = _resolved(parents, "acme/base-a", tmp_path)
    local = ModelFiles.open(parents.folders["acme/base-a"])
    names = sorted(model.files.tensors)
    # backwards, with repeats, and one tensor never read (its bytes are still hashed)
    skip = next(n for n in names if "layernorm" in n)  # shares its file with tensors that are read
    order = [model.files.tensors[n] for n in reversed(names) if n != skip] + [model.files.tensors[names[5]]] * 2
    source = RangeSource(remote_inputs([model]), read_ahead=256 << 10, threads=2, retry=Retry(attempts=2))
    source.start(order)
    with TensorReader() as reader:
        for info in order:
            got = source.read(info)
            want = reader.read(local.tensors[info.name])
            assert got.dtype == want.dtype and torch.equal(got.view(torch.uint8), want.view(torch.uint8)), info.name
    digests = source.finish()
    for path in model.files.files:
        original = parents.folders["acme/base-a"] / path.name
        assert digests[path] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert source.bytes_fetched >= sum(p.stat().st_size for p in model.files.files) - sum(
        8 + int.from_bytes(p.read_bytes()[:8], "little") for p in model.files.files)
