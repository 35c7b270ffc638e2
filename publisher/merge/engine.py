"""The streaming engine: read a few tensors, merge, transform per variant, write shards in order.

A thread pool computes output tensors (read with pread → convert → method → cast → check
→ per-variant transforms such as FP8) while the calling thread writes finished tensors in
plan order, hashing as it writes. How many tensors are in flight is bounded by a memory
budget (each job's inputs, output and the method's declared workspace), so a 7B merge runs
in a small, fixed amount of memory whatever the thread count. Results are consumed in plan
order, so the bytes never depend on which thread finished first.

Resumable: each shard is written under a temporary name and renamed when whole, and the
work folder's progress.json lists whole shards with their hashes. A rerun of the same
plan skips the tensors whose shards are all whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from publisher.allocator import bound_allocator, release_freed
from publisher.errors import OutputError
from publisher.lazy import torch
from publisher.merge.compute import Outputs, TensorCompute, tensor_sha256
from publisher.merge.io import DoneShard, LocalSink, LocalSource, ShardSink, TensorSource
from publisher.merge.plan import MergePlan, TensorPlan
from publisher.merge.progress import MergeProgress
from publisher.tensors import (
    ITEMSIZE,
    FileDigest,
    PlannedTensor,
    ShardWriter,
    assign_shards,
    encode_header,
    shard_names,
    write_index,
)

PROGRESS_FILE = "progress.json"
TENSOR_DIGESTS_FILE = "tensor-digests.json"  # variant -> tensor -> sha256 of its bytes (streaming builds)
DEFAULT_SHARD_BYTES = 5_000_000_000
DEFAULT_MEMORY_BUDGET = 1536 << 20

Transform = Callable[[str, "torch.Tensor"], list[tuple[str, "torch.Tensor"]]]


def identity(name: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    return [(name, tensor)]


@dataclass
class VariantOutput:
    """One model folder the engine fills: the merged model, or a quantized copy of it."""

    name: str
    folder: str  # relative to the build dir ("" for the merged model)
    planned: list[PlannedTensor]  # every tensor it will hold, in write order
    transform: Transform = identity  # merged tensor -> this variant's tensors
    metadata: dict[str, str] = field(default_factory=lambda: {"format": "pt"})


@dataclass
class EngineStats:
    tensors: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0


def job_bytes(plan: MergePlan, t: TensorPlan, variants: int = 1) -> int:
    """Bytes a job holds until written: inputs, the merged tensor, each extra variant's copy
    (quantized copies are at most ~0.6x the merged bytes) and the method's workspace."""
    inputs = plan.input_bytes(t)
    work = inputs * (2 if plan.recipe.recipe.compute_dtype else 1)
    return int(inputs + t.out.nbytes * (1 + 0.6 * (variants - 1)) + work * plan.method.workspace)


def plan_fingerprint(plan: MergePlan, variants: list[VariantOutput], shard_bytes: int, inputs: list[str]) -> str:
    """What must be equal for a half-written build to be resumed: recipe, inputs, layout."""
    h = hashlib.sha256()
    h.update(plan.recipe.sha256.encode())
    for i in inputs:
        h.update(i.encode())
    h.update(str(shard_bytes).encode())
    for v in variants:
        h.update(v.name.encode())
        for p in v.planned:
            h.update(f"{p.name}|{p.dtype}|{p.shape}".encode())
    return h.hexdigest()


class _VariantWriter:
    """Writes one variant's tensors into its shards, skipping shards already whole."""

    def __init__(
        self, variant: VariantOutput, root: Path, shard_bytes: int, done: dict[str, FileDigest], sink: ShardSink
    ) -> None:
        self.variant = variant
        self.sink = sink
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.shards = assign_shards(variant.planned, shard_bytes)
        self.names = shard_names(len(self.shards))
        self.done = done  # key: folder/name
        self.shard_of: dict[str, int] = {t.name: i for i, shard in enumerate(self.shards) for t in shard}
        self._writer: ShardWriter | None = None
        self._current = -1
        self.digests: dict[str, FileDigest] = {}

    def key(self, i: int) -> str:
        return f"{self.variant.folder}/{self.names[i]}" if self.variant.folder else self.names[i]

    def shard_done(self, i: int) -> bool:
        return self.key(i) in self.done and (self.root / self.names[i]).is_file()

    def needs(self, tensor_names: list[str]) -> bool:
        return any(not self.shard_done(self.shard_of[n]) for n in tensor_names)

    def write(self, name: str, tensor: torch.Tensor, on_shard_done: Callable[[str, FileDigest], None]) -> None:
        i = self.shard_of[name]
        if self.shard_done(i):
            return
        if self._current != i:
            self._current = i
            self.sink.reserve(len(encode_header(self.shards[i], self.variant.metadata)))
            self._writer = ShardWriter(self.root / self.names[i], self.shards[i], self.variant.metadata)
        assert self._writer is not None
        self.sink.reserve(tensor.nbytes)
        self._writer.write(name, tensor)
        if self._writer.expected is None:
            digest = self._writer.close()
            self._writer = None
            on_shard_done(self.key(i), digest)
            self.sink.shard_done(DoneShard(self.key(i), self.root / self.names[i], digest))

    def finish(self, parameter_count: int) -> list[FileDigest]:
        digests = [self.done[self.key(i)] for i in range(len(self.shards))]
        index = write_index(self.root, self.shards, self.names, parameter_count)
        return [*digests, *([index] if index else [])]

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


class Engine:
    def __init__(
        self,
        plan: MergePlan,
        variants: list[VariantOutput],
        work_dir: Path,
        *,
        threads: int,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        quiet: bool = False,
        fingerprint: str,
        hash_paths: list[Path] | None = None,
        source: TensorSource | None = None,
        sink: ShardSink | None = None,
        record_digests: bool = False,
    ) -> None:
        self.plan = plan
        self.variants = variants
        self.work_dir = work_dir
        self.threads = max(1, threads)
        self.shard_bytes = shard_bytes
        self.memory_budget = memory_budget
        self.quiet = quiet
        self.fingerprint = fingerprint
        self.source: TensorSource = source or LocalSource(hash_paths)
        self.sink: ShardSink = sink or LocalSink()
        self.input_hashes: dict[Path, str] = {}  # input files hashed on the way (see hashing.py)
        self.stats = EngineStats()
        self.compute = TensorCompute(plan, self.source)
        # sha256 of every tensor written, per variant: a streaming build's measured pass recomputes
        # the tensors (its shards left the disk) and proves them equal to these (check/recompute.py)
        self.record_digests = record_digests
        self.tensor_digests: dict[str, dict[str, str]] = {v.name: {} for v in variants}

    # -- progress file --------------------------------------------------------------

    def _load_progress(self) -> dict[str, FileDigest]:
        path = self.work_dir / PROGRESS_FILE
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        if data.get("fingerprint") != self.fingerprint:
            raise OutputError(
                "holds a half-finished build of a different recipe or different parents",
                where=str(self.work_dir),
                fix="delete that folder, or build into another --out",
            )
        return {k: FileDigest(**v) for k, v in data.get("shards", {}).items()}

    def _load_digests(self) -> None:
        path = self.work_dir / TENSOR_DIGESTS_FILE
        if self.record_digests and path.is_file():  # a resumed build: the tensors of its whole shards
            for name, digests in json.loads(path.read_text()).items():
                self.tensor_digests.setdefault(name, {}).update(digests)

    def _save_digests(self) -> None:
        if self.record_digests:
            tmp = self.work_dir / (TENSOR_DIGESTS_FILE + ".tmp")
            tmp.write_text(json.dumps(self.tensor_digests, sort_keys=True))
            os.replace(tmp, self.work_dir / TENSOR_DIGESTS_FILE)

    def _save_progress(self, done: dict[str, FileDigest]) -> None:
        data = {
            "fingerprint": self.fingerprint,
            "shards": {k: {"path": d.path, "size": d.size, "sha256": d.sha256} for k, d in sorted(done.items())},
        }
        tmp = self.work_dir / (PROGRESS_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.work_dir / PROGRESS_FILE)

    def _resume(self, done: dict[str, FileDigest]) -> dict[str, FileDigest]:
        """Shards a killed run finished, as far as the sink still holds them whole."""
        if not done:
            return done
        folders = {v.folder for v in self.variants}
        listed = []
        for key, digest in done.items():
            folder, _, name = key.rpartition("/")
            if folder in folders:
                listed.append(DoneShard(key, (self.work_dir / folder if folder else self.work_dir) / name, digest))
        kept = {d.key: d.digest for d in self.sink.resume(listed)}
        if len(kept) != len(done):
            self._save_progress(kept)
        return kept

    # -- one tensor -------------------------------------------------------------------

    def _compute(self, t: TensorPlan) -> tuple[list[Outputs], list[dict[str, str]]]:
        """Each variant's outputs for ``t`` and, when recorded, the sha256 of each output's bytes."""
        out = self.compute.merged(t)
        results = [v.transform(t.name, out) for v in self.variants]
        digests = [{n: tensor_sha256(x) for n, x in outputs} for outputs in results] if self.record_digests else []
        return results, digests

    # -- the run ----------------------------------------------------------------------

    def run(self) -> dict[str, list[FileDigest]]:
        torch.set_num_threads(1)  # parallelism comes from the pool, one tensor per thread
        bound_allocator()  # two arenas; freed tensors go back to the OS: peak RSS follows the budget
        self.work_dir.mkdir(parents=True, exist_ok=True)
        done = self._resume(self._load_progress())
        self._load_digests()
        writers = [
            _VariantWriter(v, self.work_dir / v.folder if v.folder else self.work_dir, self.shard_bytes, done, self.sink)
            for v in self.variants
        ]
        # Which variant tensor names each merged tensor produces (known from the layouts).
        produced = _produced_names(self.plan, self.variants)
        todo = [
            (i, t) for i, t in enumerate(self.plan.tensors)
            if any(w.needs(produced[i][k]) for k, w in enumerate(writers))
        ]
        progress = MergeProgress(len(todo), sum(self.plan.input_bytes(t) for _, t in todo), self.quiet)
        self.source.start([self.plan.models[m].files.tensors[name] for _, t in todo for m, name in t.sources])

        def on_shard_done(key: str, digest: FileDigest) -> None:
            done[key] = digest
            self._save_digests()  # before progress: a shard listed whole has its tensors' digests saved
            self._save_progress(done)

        start = time.monotonic()
        pending: deque[tuple[TensorPlan, int, Future[tuple[list[Outputs], list[dict[str, str]]]]]] = deque()
        in_flight = 0  # bytes held by submitted jobs until their outputs are written
        try:
            with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="merge") as pool:
                items = iter(todo)
                held: tuple[int, TensorPlan] | None = None
                while True:
                    # Keep the pool fed while the budget allows; a job over budget runs alone.
                    while len(pending) < self.threads * 2:
                        nxt = held or next(items, None)
                        held = None
                        if nxt is None:
                            break
                        cost = job_bytes(self.plan, nxt[1], len(self.variants))
                        if pending and in_flight + cost > self.memory_budget:
                            held = nxt
                            break
                        in_flight += cost
                        pending.append((nxt[1], cost, pool.submit(self._compute, nxt[1])))
                    if not pending:
                        break
                    t, cost, fut = pending.popleft()
                    results, digests = fut.result()
                    for w, d in zip(writers, digests, strict=False):
                        self.tensor_digests[w.variant.name].update(d)
                    for w, outputs in zip(writers, results, strict=True):
                        for name, tensor in outputs:
                            w.write(name, tensor, on_shard_done)
                            self.stats.bytes_written += tensor.nbytes
                    del results
                    release_freed()  # this tensor's memory leaves RSS before the next one is read
                    in_flight -= cost
                    self.stats.tensors += 1
                    read = self.plan.input_bytes(t)
                    self.stats.bytes_read += read
                    progress.advance(read)
        except BaseException:
            for _, _, fut in pending:
                fut.cancel()
            for w in writers:
                w.abort()
            self.source.abort()
            self.sink.abort()
            raise
        finally:
            progress.close()
        try:
            self.input_hashes = self.source.finish()  # raises on a parent whose sha256 did not match
            self.sink.finish()
            self._save_digests()
        except BaseException:
            self.sink.abort()
            raise
        self.stats.seconds = time.monotonic() - start
        return {
            w.variant.name: w.finish(sum(p.nbytes // ITEMSIZE[p.dtype] for p in w.variant.planned))
            for w in writers
        }


def _produced_names(plan: MergePlan, variants: list[VariantOutput]) -> list[list[list[str]]]:
    """For merged tensor i and variant k, the names variant k writes for it (from its layout)."""
    out: list[list[list[str]]] = [[[] for _ in variants] for _ in plan.tensors]
    for k, v in enumerate(variants):
        owner = variant_owners(plan, v)
        for name, i in owner.items():
            out[i][k].append(name)
    return out


def variant_owners(plan: MergePlan, variant: VariantOutput) -> dict[str, int]:
    """Variant tensor name -> index of the merged tensor it derives from (by name prefix)."""
    index = {t.name: i for i, t in enumerate(plan.tensors)}
    owners: dict[str, int] = {}
    for p in variant.planned:
        if p.name in index:
            owners[p.name] = index[p.name]
            continue
        # Derived tensors (e.g. "<layer>.weight_scale") belong to "<layer>.weight".
        stem = p.name.rsplit(".", 1)[0]
        owners[p.name] = index[f"{stem}.weight"]
    return owners
