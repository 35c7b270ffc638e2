"""The engine's two ends: where parent tensors come from, and where finished shards go.

The engine reads tensors through a ``TensorSource`` and hands each whole shard to a
``ShardSink``; it never knows which end it talks to. Locally, the source is ``pread`` on the
parents' files (hashed on the way by ``InputHasher``) and the sink keeps shards in the build
folder. A streaming release plugs in Range requests on the Hub (``hub/range_reader.py``) and an
uploader that turns each shard into an LFS object and frees its disk (``hub/stream_upload.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from publisher.lazy import torch
from publisher.merge.hashing import InputHasher
from publisher.tensors import FileDigest, TensorInfo, TensorReader


class TensorSource(Protocol):
    def start(self, order: Sequence[TensorInfo]) -> None:
        """The reads to come, in the order jobs will ask for them (read-ahead follows it)."""

    def read(self, info: TensorInfo) -> torch.Tensor:
        """The tensor's raw bytes as a new CPU tensor of its dtype and shape (never modified later)."""

    def finish(self) -> dict[Path, str]:
        """sha256 of the input files read whole on the way (raises if one did not match)."""

    def abort(self) -> None: ...


@dataclass(frozen=True)
class DoneShard:
    key: str  # "<variant folder>/<shard name>"
    path: Path
    digest: FileDigest


class ShardSink(Protocol):
    def resume(self, done: list[DoneShard]) -> list[DoneShard]:
        """Of the shards a killed run finished, those still whole where they went (others are redone)."""

    def reserve(self, nbytes: int) -> None:
        """Called before ``nbytes`` more are written to disk: may wait for disk to be freed."""

    def shard_done(self, shard: DoneShard) -> None:
        """A shard is whole (renamed into place, hashed)."""

    def finish(self) -> None:
        """Every shard was handed over; returns when all are where they go."""

    def abort(self) -> None: ...


class LocalSource:
    """``pread`` on local files; input files hashed from the bytes read (see hashing.py)."""

    def __init__(self, hash_paths: list[Path] | None = None) -> None:
        self.reader = TensorReader()
        self.hash_paths = hash_paths or []
        self.hasher: InputHasher | None = None

    def start(self, order: Sequence[TensorInfo]) -> None:
        self.hasher = InputHasher(self.hash_paths)

    def read(self, info: TensorInfo) -> torch.Tensor:
        x = self.reader.read(info)
        if self.hasher is not None:
            self.hasher.offer(info, x)
        return x

    def finish(self) -> dict[Path, str]:
        self.reader.close()
        return self.hasher.finish() if self.hasher is not None else {}

    def abort(self) -> None:
        if self.hasher is not None:
            self.hasher.abort()
        self.reader.close()


class LocalSink:
    """Shards stay in the build folder: a finished shard is whole when its file exists."""

    def resume(self, done: list[DoneShard]) -> list[DoneShard]:
        return [d for d in done if d.path.is_file()]

    def reserve(self, nbytes: int) -> None:
        pass

    def shard_done(self, shard: DoneShard) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass
