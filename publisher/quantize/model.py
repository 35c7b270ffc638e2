"""``publisher quantize``: an existing bf16/fp16 safetensors folder → an FP8 variant folder.

Streaming: every tensor is read in bands of rows with ``pread`` (never mmap), quantized band
by band on a small thread pool, and written in order by the calling thread, so memory stays
at a few bands per thread whatever the model size. The output is built in a hidden folder
next to ``out`` and renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from publisher.allocator import bound_allocator
from publisher.errors import OutputError, SourceError
from publisher.lazy import torch
from publisher.quantize import fp8
from publisher.quantize.fp8 import bands, quantize_band
from publisher.quantize.plan import VariantPlan, plan_variant, scale_name
from publisher.quantize.provenance import source_files, write_quantize_manifest
from publisher.quantize.schemes import DEFAULT_SCHEME, Scheme
from publisher.quantize.writer import DEFAULT_MAX_SHARD_BYTES, VariantWriter
from publisher.tensors import FileDigest, ModelFiles, PlannedTensor, TensorInfo, TensorReader


@dataclass(frozen=True)
class QuantizeResult:
    out: Path
    scheme: str
    files: list[FileDigest]
    quantized: int  # tensors turned into FP8
    kept: int  # tensors copied unchanged
    ignored_modules: list[str]
    source_bytes: int
    output_bytes: int
    seconds: float


@dataclass(frozen=True)
class _Job:
    info: TensorInfo
    rows: tuple[int, int] | None  # None: the whole tensor (0-d or 1-d)
    quantize: bool
    last: bool  # last band of its tensor


def source_order(files: ModelFiles) -> list[TensorInfo]:
    """Tensors in the order they lie on disk: sequential reads, and the order our writer used."""
    rank = {p: i for i, p in enumerate(files.files)}
    return sorted(files.tensors.values(), key=lambda t: (rank[t.path], t.offset))


def _copy_bands(info: TensorInfo) -> Iterator[tuple[int, int] | None]:
    if len(info.shape) == 0 or info.shape[0] == 0:
        yield None
        return
    per_row = max(1, info.numel // info.shape[0])
    step = max(1, fp8.BAND_ELEMENTS // per_row)
    for r0 in range(0, info.shape[0], step):
        yield r0, min(info.shape[0], r0 + step)


def _jobs(order: Iterable[TensorInfo], plan: VariantPlan) -> Iterator[_Job]:
    for info in order:
        if info.name in plan.targets:
            ranges: list[tuple[int, int] | None] = list(bands(info.shape, plan.scheme))
        else:
            ranges = list(_copy_bands(info))
        for i, rows in enumerate(ranges):
            yield _Job(info, rows, info.name in plan.targets, i == len(ranges) - 1)


def quantize_model(
    model_dir: Path,
    out: Path,
    scheme: str | Scheme = DEFAULT_SCHEME,
    *,
    ignore: Iterable[str] = (),
    threads: int | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    fsync: bool = False,
    progress: Callable[[int], None] | None = None,
    repo_id: str | None = None,
    version: str | None = None,
) -> QuantizeResult:
    """Quantize the model in ``model_dir`` into a new folder ``out``; bad input raises before writing.

    ``out`` gets a manifest (``quantize/provenance.py``): ``publisher card`` and ``publisher
    publish`` take it like a build; ``repo_id``/``version`` are where and as what it publishes.
    """
    started = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    ignore = list(ignore)
    files = ModelFiles.open(model_dir)
    if not (model_dir / "config.json").is_file():
        raise SourceError("no config.json", where=str(model_dir), fix="a model folder needs its config.json")
    order = source_order(files)
    planned = [PlannedTensor(t.name, t.dtype, t.shape) for t in order]
    plan = plan_variant(planned, scheme, ignore, files.config, where=str(model_dir))
    _check_output(out, sum(t.nbytes for t in plan.tensors))

    workers = max(1, threads if threads is not None else min(4, os.cpu_count() or 1))
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # parallelism comes from our pool; OpenMP spinning hurts on busy boxes
    bound_allocator()  # two malloc arenas at most (see publisher/allocator.py)
    writer = VariantWriter(tmp, plan, max_shard_bytes, fsync=fsync)
    try:
        with TensorReader() as reader, ThreadPoolExecutor(workers, thread_name_prefix="fp8") as pool:
            _stream(reader, pool, workers, _jobs(order, plan), plan, writer, progress)
        digests = writer.finish(files.config, support_from=model_dir)
        write_quantize_manifest(
            tmp, model_dir=model_dir, source=source_files(model_dir, files, workers), outputs=digests,
            scheme=plan.scheme.name, suffix=plan.scheme.suffix, ignore=list(ignore),
            parameter_count=sum(t.numel for t in order), dtype="F8_E4M3", repo_id=repo_id, version=version,
            seconds=time.perf_counter() - started,
        )
        os.rename(tmp, out)
    except BaseException:
        writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(torch_threads)
    return QuantizeResult(
        out=out,
        scheme=plan.scheme.name,
        files=digests,
        quantized=len(plan.targets),
        kept=len(plan.source) - len(plan.targets),
        ignored_modules=list(plan.ignored_modules),
        source_bytes=sum(t.nbytes for t in order),
        output_bytes=sum(f.size for f in digests),
        seconds=time.perf_counter() - started,
    )


def _check_output(out: Path, needed: int) -> None:
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):  # an empty folder is fine
        raise OutputError(f"{out} already exists", where="--out", fix="choose a new folder or remove it")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < needed + (64 << 20):
        raise OutputError(
            f"needs {needed / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free on {parent}",
            where="--out",
            fix="free some disk space or write elsewhere",
        )


_Result = tuple["torch.Tensor", "torch.Tensor | None"]


def _work(reader: TensorReader, job: _Job, plan: VariantPlan) -> _Result:
    data = reader.read(job.info, job.rows)
    if not job.quantize:
        return data, None
    row0 = job.rows[0] if job.rows else 0
    return quantize_band(data, plan.scheme, job.info.name, row0)


def _stream(
    reader: TensorReader,
    pool: ThreadPoolExecutor,
    workers: int,
    jobs: Iterator[_Job],
    plan: VariantPlan,
    writer: VariantWriter,
    progress: Callable[[int], None] | None,
) -> None:
    """Keep ~2 bands per worker in flight; write results strictly in job order."""
    window: deque[tuple[_Job, Future[_Result]]] = deque()
    scales: list[torch.Tensor] = []
    exhausted = False
    while True:
        while not exhausted and len(window) < 2 * workers:
            job = next(jobs, None)
            if job is None:
                exhausted = True
                break
            window.append((job, pool.submit(_work, reader, job, plan)))
        if not window:
            return
        job, future = window.popleft()
        try:
            data, scale = future.result()
        except BaseException:
            for _, pending in window:
                pending.cancel()
            raise
        name = job.info.name
        if job.rows is None:
            writer.write(name, data)
        else:
            writer.write_part(name, data)
        if scale is not None:
            scales.append(scale)
            if job.last:
                writer.write(scale_name(name), torch.cat(scales) if len(scales) > 1 else scales[0])
                scales = []
        if progress is not None:
            progress(job.info.nbytes if job.rows is None else (job.rows[1] - job.rows[0]) * (job.info.nbytes // job.info.shape[0]))
