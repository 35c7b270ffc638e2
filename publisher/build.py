"""``publisher build``: recipe → parents → plan → engine → a complete model folder (and variants).

Everything is written into ``.<out>.partial`` beside the output and renamed into place
when complete, so the output folder either does not exist or is whole (an empty one is
accepted). A build that fails removes that work folder; a killed build resumes from its
last whole shard when run again with the same recipe and parents.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from publisher import __version__
from publisher.errors import OutputError
from publisher.manifest import (
    BUILD_RECORD_FILE,
    MANIFEST_FILE,
    BuildRecord,
    FileEntry,
    Manifest,
    QuantizedFrom,
    Timings,
    Variant,
    load_build_record,
    load_manifest,
)
from publisher.merge.engine import (
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_SHARD_BYTES,
    Engine,
    VariantOutput,
    job_bytes,
    plan_fingerprint,
)
from publisher.merge.plan import MergePlan, make_plan
from publisher.multi import build_multi, split_documents
from publisher.portable import PortableName, portable_names, rewrite_refs
from publisher.recipe import LoadedRecipe, load_recipe, model_references
from publisher.references import parse_reference
from publisher.section_checks import check_sections, reference_where
from publisher.side_files import write_side_files
from publisher.sources import (
    ResolvedModel,
    hash_files,
    input_entry,
    known_hashes,
    model_files,
    portable_ref,
    remember_hashes,
    resolve,
)
from publisher.streaming import (
    PARENTS_DIR,
    StreamTarget,
    disk_needed,
    input_identities,
    open_ends,
    remote_hashes,
)
from publisher.tensors import write_file_atomic

if TYPE_CHECKING:  # the check stage (pydantic reports, transformers) is imported when a build runs it
    from publisher.check.results import CheckReport
    from publisher.check.run import CheckOptions

BASELINE_RSS = 350 << 20  # the interpreter, torch and friends before any tensor


@dataclass
class BuildOptions:
    threads: int = os.cpu_count() or 1
    shard_bytes: int = DEFAULT_SHARD_BYTES
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    quiet: bool = False
    render_cards: bool = True
    warn: Callable[[str], None] | None = None  # where card warnings (unknown ancestry) go
    strict: bool = False  # recipe warnings (keys and parameters with no effect) are errors
    checks: bool = True  # run publisher.check on the build before its cards (structural + measured)
    check_options: CheckOptions | None = None  # command-line overrides of the recipe's checks:
    log: Callable[[str], None] | None = None  # progress lines of the checks


@dataclass
class BuildResult:
    out: Path
    manifest: Manifest
    skipped: bool  # the output already held this exact build
    checks: CheckReport | None = None  # None when the checks were not run
    record: BuildRecord | None = None  # when, how long, which folders (build.json)


def resolve_models(
    loaded: LoadedRecipe,
    *,
    pins: dict[str, str] | None = None,
    recipe_outputs: dict[str, Path] | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    headers_dir: Path | None = None,
) -> dict[str, ResolvedModel]:
    refs = model_references(loaded.merge)
    for tok in loaded.merge.tokenizer_models():
        if tok not in refs:
            refs.append(tok)

    def one(ref: str) -> ResolvedModel:
        return resolve(
            ref,
            recipe_dir=loaded.path.parent,
            where=f"{reference_where(loaded, ref)}: model {ref}",
            pins=pins,
            recipe_outputs=recipe_outputs,
            endpoint=endpoint,
            token=token,
            headers_dir=headers_dir,
        )

    if headers_dir is None or len(refs) < 2:  # downloads: one at a time, as huggingface_hub shows them
        return {ref: one(ref) for ref in refs}
    # Header-only reads are a few small requests per parent: the parents at once, but the
    # references to one repo (``org/x``, ``org/x+lora``, ``org/x@sha``) one after the other, as they
    # write the same header-only copy. The first failure in recipe order is the one reported.
    groups: dict[str, list[str]] = {}
    for ref in refs:
        groups.setdefault(_repo_of(ref), []).append(ref)
    done: dict[str, ResolvedModel | BaseException] = {}

    def in_turn(group: list[str]) -> None:
        for ref in group:
            try:
                done[ref] = one(ref)
            except Exception as e:  # re-raised below, in recipe order
                done[ref] = e
                return

    with ThreadPoolExecutor(max_workers=min(8, len(groups)), thread_name_prefix="resolve") as pool:
        list(pool.map(in_turn, groups.values()))
    for ref in refs:
        result = done.get(ref)
        if isinstance(result, BaseException):
            raise result
    return {ref: done[ref] for ref in refs}  # type: ignore[misc]


def _repo_of(ref: str) -> str:
    """The folder or repo a reference reads its model from (its LoRA and revision aside)."""
    try:
        return parse_reference(ref).model.path
    except ValueError:
        return ref


def load_plan(
    recipe_path: Path,
    *,
    pins: dict[str, str] | None = None,
    recipe_outputs: dict[str, Path] | None = None,
    headers_dir: Path | None = None,
    strict: bool = False,
) -> MergePlan:
    """The merge plan from headers; with ``headers_dir``, Hub parents are read header-only (no weights)."""
    loaded = load_recipe(recipe_path, strict=strict)
    check_sections(loaded)
    models = resolve_models(loaded, pins=pins, recipe_outputs=recipe_outputs, headers_dir=headers_dir)
    return make_plan(loaded, models)


def merged_variant(plan: MergePlan) -> VariantOutput:
    return VariantOutput(name="merged", folder="", planned=[t.out for t in plan.tensors])


def quantized_variants(plan: MergePlan) -> list[VariantOutput]:
    """The FP8 (or other) variants the recipe asks for; empty until quantization is wired in."""
    if not plan.recipe.recipe.quantize:
        return []
    from publisher.quantize.variants import plan_variants  # imported lazily: optional stage

    return plan_variants(plan)


def estimated_peak_rss(plan: MergePlan, threads: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    biggest = max((job_bytes(plan, t) for t in plan.tensors), default=0)
    return BASELINE_RSS + max(biggest, min(memory_budget, biggest * threads * 2))


def local_names(plan: MergePlan) -> dict[str, PortableName]:
    """Portable names of the parents read from folders of this machine (by recipe ref)."""
    names = portable_names({m.ref: m.path for m in plan.models if m.kind == "local"})
    for m in plan.models:
        if m.lora is not None:
            name = portable_ref(m, names.get(m.ref))
            if name is not None:
                names[m.ref] = name
    return names


def portable_recipe(loaded: LoadedRecipe, names: dict[str, PortableName]) -> bytes:
    """The recipe as published: as written, with each local parent named portably (no paths)."""
    return rewrite_refs(loaded.text, {ref: n.ref for ref, n in names.items() if n.ref != ref})


def _check_disk(path: Path, needed: int) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    margin = 64 << 20
    if free < needed + margin:
        raise OutputError(
            f"not enough free disk: the build needs {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB free",
            where=str(probe),
            fix="free some space or build to another disk with --out",
        )


def work_folder(out: Path) -> Path:
    """Where a build of ``out`` is written until it is whole: beside it, so the last step is a rename."""
    return out.parent / f".{out.name}.partial"


def build(
    recipe_path: Path,
    out: Path,
    options: BuildOptions | None = None,
    *,
    stream: StreamTarget | None = None,
    **resolve_kwargs: object,
) -> BuildResult:
    """Build ``recipe_path`` into ``out``.

    With ``stream``, Hub parents are read by Range requests and shards uploaded as they are
    written (see ``streaming.py``): the result's shards are header-only stubs, ready to publish.

    A build that fails removes the work folder it created. An interrupted or killed one keeps
    it, and the same build run again resumes from its last whole shard (a resume that fails
    keeps it too, so the next try still resumes).
    """
    work = work_folder(Path(out).absolute())
    resuming = work.exists()
    made = [p for p in work.parents if not p.exists()]  # folders above --out this build creates
    try:
        return _build(recipe_path, out, options, stream=stream, **resolve_kwargs)
    except Exception:
        if not resuming:
            shutil.rmtree(work, ignore_errors=True)
            for folder in made:  # innermost first; only if still empty
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise


def _build(
    recipe_path: Path,
    out: Path,
    options: BuildOptions | None = None,
    *,
    stream: StreamTarget | None = None,
    **resolve_kwargs: object,
) -> BuildResult:
    options = options or BuildOptions()
    docs = split_documents(Path(recipe_path))
    if docs is not None:  # a mergekit-multi file: stages, then the final merge (multi.py)
        return build_multi(
            Path(recipe_path),
            out,
            docs,
            lambda r, o, final, outputs: build(
                r, o, options, stream=stream if final else None,
                **{**resolve_kwargs, "recipe_outputs": {**(resolve_kwargs.get("recipe_outputs") or {}), **outputs}},  # type: ignore[dict-item]
            ),
        )
    t0 = time.monotonic()
    loaded = load_recipe(recipe_path, strict=options.strict)
    check_sections(loaded)  # card, quantize, publish: before any parent is resolved or read
    if options.checks:
        from publisher.check.run import check_device

        check_device(loaded.recipe.checks, options.check_options)  # --device cuda without a GPU: before any work
    if options.warn is not None:
        for warning in loaded.warnings:
            options.warn(warning)
    out = Path(out).absolute()
    if out.exists() and not _is_empty_folder(out):
        existing = _existing_build(out)
        record = load_build_record(out)
        recipe_sha = record.recipe_sha256 if record is not None and record.recipe_sha256 else None
        if existing is not None and (recipe_sha or existing.recipe_sha256) == loaded.sha256:
            return BuildResult(out=out, manifest=existing, skipped=True, record=record)
        raise OutputError(
            "already exists and is not a build of this recipe",
            where=str(out),
            fix="choose another --out, or delete the folder",
        )
    work = work_folder(out)
    if stream is not None:
        (work / PARENTS_DIR).mkdir(parents=True, exist_ok=True)
        resolve_kwargs = {**resolve_kwargs, "headers_dir": work / PARENTS_DIR}
    models = resolve_models(loaded, **resolve_kwargs)  # type: ignore[arg-type]
    plan = make_plan(loaded, models)
    t_resolved = time.monotonic()
    variants = [merged_variant(plan), *quantized_variants(plan)]
    input_paths = [p for m in plan.models for p in model_files(m)]
    hashes = known_hashes(input_paths) | remote_hashes(plan.models)
    fingerprint = plan_fingerprint(
        plan,
        variants,
        options.shard_bytes,
        [f"{m.ref}|{m.revision}" for m in plan.models] + input_identities(plan.models, input_paths),
    )
    needed = sum(p.nbytes for v in variants for p in v.planned)
    done_bytes = sum(f.stat().st_blocks * 512 for f in work.rglob("*.safetensors")) if work.is_dir() else 0
    if stream is not None:
        needed = disk_needed(options.shard_bytes, needed, len(variants))
    _check_disk(out.parent, max(0, needed - done_bytes))
    hash_paths = [p for p in input_paths if p not in hashes]
    ends = {}
    if stream is not None:
        source, sink = open_ends(plan, variants, work, shard_bytes=options.shard_bytes, target=stream,
                                 hash_paths=hash_paths, repo_of=lambda v: _variant_repo(plan, v))
        ends = {"source": source, "sink": sink}
    engine = Engine(
        plan,
        variants,
        work,
        threads=options.threads,
        shard_bytes=options.shard_bytes,
        memory_budget=options.memory_budget,
        quiet=options.quiet,
        fingerprint=fingerprint,
        hash_paths=hash_paths,
        record_digests=stream is not None,  # its measured pass recomputes the tensors (check/recompute.py)
        **ends,  # type: ignore[arg-type]
    )
    digests = engine.run()
    computed = engine.input_hashes
    computed |= hash_files([p for p in input_paths if p not in hashes and p not in computed], options.threads)
    remember_hashes(computed)
    hashes |= computed
    names = local_names(plan)
    inputs = [input_entry(m, hashes, names.get(m.ref)) for m in plan.models]
    recipe_text = portable_recipe(loaded, names)
    t_merged = time.monotonic()
    manifest_variants = []
    for v in variants:
        folder = work / v.folder if v.folder else work
        files = [*digests[v.name], *write_side_files(plan, v, folder, recipe_text)]
        manifest_variants.append(
            Variant(
                name=v.name,
                repo_id=_variant_repo(plan, v),
                folder=v.folder,
                quantization=_variant_quantization(plan, v),
                dtype=_dominant_dtype(v),
                parameter_count=plan.parameter_count,
                files=[FileEntry(path=f.path, size=f.size, sha256=f.sha256) for f in sorted(files, key=lambda f: f.path)],
            )
        )
    manifest = Manifest(
        tool=f"publisher {__version__}",
        recipe_name=loaded.recipe.name,
        recipe_version=loaded.recipe.version,
        recipe_sha256=hashlib.sha256(recipe_text).hexdigest(),
        merge_method=loaded.merge.merge_method,
        seed=loaded.recipe.seed,
        compute_dtype=loaded.recipe.compute_dtype,
        out_dtype=plan.out_dtype,
        inputs=inputs,
        variants=manifest_variants,
    )
    for mv in manifest_variants[1:]:
        write_file_atomic(work / mv.folder / MANIFEST_FILE, variant_manifest(manifest, mv).to_json().encode())
    record = BuildRecord(
        created=datetime.now(UTC).replace(microsecond=0),
        timings=Timings(
            resolve_s=round(t_resolved - t0, 3),
            merge_s=round(t_merged - t_resolved, 3),
            total_s=round(time.monotonic() - t0, 3),
        ),
        recipe_path=str(loaded.path.absolute()),
        recipe_sha256=loaded.sha256,
        parent_folders={
            (names[m.ref].ref if m.ref in names else m.ref): str(m.path) for m in plan.models
        },
    )
    (work / BUILD_RECORD_FILE).write_text(record.to_json())
    (work / MANIFEST_FILE).write_text(manifest.to_json())
    report = _run_checks(work, loaded, options, (plan, variants, engine, stream)) if options.checks else None
    if options.render_cards:
        _render_cards(work, loaded.path.parent, options)
    (work / "progress.json").unlink(missing_ok=True)
    shutil.rmtree(work / PARENTS_DIR, ignore_errors=True)
    os.replace(work, out)
    return BuildResult(out=out, manifest=manifest, skipped=False, record=record, checks=report)


def _run_checks(
    work: Path, loaded: LoadedRecipe, options: BuildOptions,
    built: tuple[MergePlan, list[VariantOutput], Engine, StreamTarget | None],
) -> CheckReport:
    """Check stage: between the build directory and the card (the card states what it measured).

    A streaming build's shards are stubs by now: its measured pass computes the tensors again
    from the parents and proves them equal to the published ones (check/recompute.py).
    """
    from publisher.check.run import check_build

    plan, variants, engine, stream = built
    if stream is None:
        return check_build(work, settings=loaded.recipe.checks, options=options.check_options, log=options.log)
    from publisher.check.recompute import Recomputed
    from publisher.hub.range_reader import remote_inputs
    from publisher.hub.range_reads import RangeReads

    source = RangeReads(remote_inputs(plan.models), retry=stream.retry)
    try:
        weights = Recomputed(plan, variants, engine.tensor_digests, source)
        return check_build(work, settings=loaded.recipe.checks, options=options.check_options, log=options.log,
                           reads=weights.reads_for(work))
    finally:
        source.close()


def variant_manifest(build: Manifest, variant: Variant, merged_revision: str | None = None) -> Manifest:
    """The manifest a quantized variant's repo carries: itself, quantized from the merged model.

    The merged model is pinned by content (its files' sha256) at build time, and by its
    commit once it is published (``merged_revision``, set by publish and release).
    """
    merged = build.variant("merged")
    return build.model_copy(
        update={
            "out_dtype": variant.dtype,
            "variants": [variant.model_copy(update={"folder": ""})],
            "quantized_from": QuantizedFrom(
                ref=merged.repo_id or "merged",
                repo_id=merged.repo_id,
                revision=merged_revision,
                files=[f for f in merged.files if f.path.endswith(".safetensors") or f.path == "config.json"],
            ),
        }
    )


def _variant_repo(plan: MergePlan, v: VariantOutput) -> str | None:
    name = plan.recipe.recipe.name
    if name is None:
        return None
    return name if v.name == "merged" else f"{name}-{v.name}"


def _variant_quantization(plan: MergePlan, v: VariantOutput) -> dict[str, object] | None:
    if v.name == "merged":
        return None
    from publisher.quantize.variants import variant_quantization

    return variant_quantization(plan, v)


def _dominant_dtype(v: VariantOutput) -> str:
    sizes: dict[str, int] = {}
    for p in v.planned:
        sizes[p.dtype] = sizes.get(p.dtype, 0) + p.nbytes
    return max(sizes, key=lambda k: sizes[k]) if sizes else "BF16"


def _render_cards(build_dir: Path, recipe_dir: Path, options: BuildOptions) -> None:
    from publisher.card import render_cards

    render_cards(build_dir, recipe_dir=recipe_dir, warn=options.warn)


def _is_empty_folder(path: Path) -> bool:
    """An empty --out folder is accepted: the finished build is renamed onto it."""
    return path.is_dir() and not any(path.iterdir())


def _existing_build(out: Path) -> Manifest | None:
    if not (out / MANIFEST_FILE).is_file():
        return None
    try:
        return load_manifest(out)
    except OutputError:
        return None
