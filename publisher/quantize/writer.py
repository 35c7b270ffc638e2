"""Writes one FP8 variant folder as its tensors arrive: shards, index, config, support files.

Shared by the standalone ``publisher quantize`` (which streams bands of each tensor) and the
merge engine's same pass (which hands over each merged tensor whole): both go through the
same plan, shard assignment and header metadata, so both give the same bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from publisher.lazy import torch
from publisher.quantize.config import config_bytes
from publisher.quantize.plan import VariantPlan
from publisher.tensors import (
    FileDigest,
    PlannedTensor,
    ShardWriter,
    assign_shards,
    sha256_file,
    shard_names,
    write_file_atomic,
    write_index,
)

SHARD_METADATA = {"format": "pt"}
DEFAULT_MAX_SHARD_BYTES = 5_000_000_000
# Files a variant carries over from its source folder besides weights and config.json.
SUPPORT_PATTERNS = (
    "generation_config.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template*",
    "preprocessor_config.json",
    "processor_config.json",
    "LICENSE*",
    "NOTICE*",
)


class VariantWriter:
    """Streams a variant's tensors into shards in plan order; call ``finish`` to complete it."""

    def __init__(
        self,
        folder: Path,
        plan: VariantPlan,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        *,
        fsync: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.plan = plan
        self.fsync = fsync
        self.shards: list[list[PlannedTensor]] = assign_shards(plan.tensors, max_shard_bytes)
        self.shard_files = shard_names(len(self.shards))
        self.digests: list[FileDigest] = []
        self._index = 0
        self._writer: ShardWriter | None = None

    def _current(self) -> ShardWriter:
        if self._writer is None:
            if self._index >= len(self.shards):
                raise RuntimeError("all planned shards are already written")
            self._writer = ShardWriter(
                self.folder / self.shard_files[self._index], self.shards[self._index], SHARD_METADATA
            )
        return self._writer

    def _after(self) -> None:
        writer = self._writer
        if writer is not None and writer.expected is None:
            self.digests.append(writer.close(fsync=self.fsync))
            self._writer = None
            self._index += 1

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """A whole *source* tensor (e.g. a merged one): quantized if it is a target, then written."""
        for out_name, out in self.plan.quantize(name, tensor):
            self.write(out_name, out)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """A whole *variant* tensor, already quantized."""
        self._current().write(name, tensor)
        self._after()

    def write_part(self, name: str, part: torch.Tensor) -> None:
        """The next rows of a variant tensor."""
        self._current().write_part(name, part)
        self._after()

    def finish(self, source_config: Mapping[str, Any], support_from: Path | None = None) -> list[FileDigest]:
        """Index, config.json (with the quantization block) and support files; returns every file."""
        if self._writer is not None or self._index != len(self.shards):
            missing = self._writer.expected if self._writer else self.shards[self._index][0]
            raise RuntimeError(f"variant finished before {missing.name if missing else '?'} was written")
        files = list(self.digests)
        index = write_index(self.folder, self.shards, self.shard_files, self.plan.parameter_count)
        if index is not None:
            files.append(index)
        files.append(write_file_atomic(self.folder / "config.json", config_bytes(self.plan.config(source_config))))
        if support_from is not None:
            files.extend(copy_support_files(support_from, self.folder))
        return sorted(files, key=lambda f: f.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def support_files(folder: Path) -> list[Path]:
    """Tokenizer, generation config, chat template and license files of a model folder."""
    found: set[Path] = set()
    for pattern in SUPPORT_PATTERNS:
        found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def copy_support_files(src: Path, dst: Path, names: Iterable[Path] | None = None) -> list[FileDigest]:
    digests = []
    for path in names if names is not None else support_files(src):
        target = dst / path.name
        shutil.copyfile(path, target)
        digests.append(FileDigest(path=path.name, size=target.stat().st_size, sha256=sha256_file(target)))
    return digests
