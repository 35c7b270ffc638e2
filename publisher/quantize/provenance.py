"""``publisher quantize`` output is a build too: its manifest, so it can be carded and published.

The manifest names the source by what it is (a Hugging Face cache snapshot is ``org/name`` at
its commit, any other folder is its folder name, marked local; see ``publisher.portable``),
with its files' sha256, and lists the output files; ``merge_method`` is ``"none"``. Where the
source came from on this machine, and when, goes into ``build.json`` (never published).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from publisher import __version__
from publisher.manifest import (
    BUILD_RECORD_FILE,
    MANIFEST_FILE,
    QUANTIZE_ONLY,
    BuildRecord,
    FileEntry,
    InputModel,
    Manifest,
    QuantizedFrom,
    Timings,
    Variant,
)
from publisher.portable import portable_name
from publisher.tensors import FileDigest, ModelFiles


def source_files(model_dir: Path, files: ModelFiles, threads: int = 2) -> list[FileEntry]:
    """The source's safetensors and config.json with sha256 (Hub cache blob names are free)."""
    from publisher.sources import hash_files, known_hashes, remember_hashes

    paths = [*files.files, model_dir / "config.json"]
    hashes = known_hashes(paths)
    computed = hash_files([p for p in paths if p not in hashes], threads)
    remember_hashes(computed)
    hashes |= computed
    return [FileEntry(path=p.name, size=p.stat().st_size, sha256=hashes[p]) for p in paths]


def write_quantize_manifest(
    out: Path,
    *,
    model_dir: Path,
    source: list[FileEntry],
    outputs: list[FileDigest],
    scheme: str,
    suffix: str,
    ignore: list[str],
    parameter_count: int,
    dtype: str,
    repo_id: str | None,
    version: str | None,
    seconds: float,
) -> Manifest:
    """Write ``manifest.json`` and ``build.json`` of a quantize output folder (before it is moved into place)."""
    name = portable_name(model_dir)
    settings = {"scheme": scheme, "ignore": sorted(ignore)}
    manifest = Manifest(
        tool=f"publisher {__version__}",
        recipe_name=repo_id,
        recipe_version=version,
        recipe_sha256=hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest(),
        merge_method=QUANTIZE_ONLY,
        seed=0,
        compute_dtype=None,
        out_dtype=dtype,
        inputs=[InputModel(ref=name.ref, kind=name.kind, repo_id=name.repo_id, revision=name.revision, files=source)],  # type: ignore[arg-type]
        variants=[
            Variant(
                name=suffix,
                repo_id=repo_id,
                folder="",
                quantization=settings,
                dtype=dtype,
                parameter_count=parameter_count,
                files=[FileEntry(path=f.path, size=f.size, sha256=f.sha256) for f in sorted(outputs, key=lambda f: f.path)],
            )
        ],
        quantized_from=QuantizedFrom(ref=name.ref, repo_id=name.repo_id, revision=name.revision, files=source),
    )
    (out / MANIFEST_FILE).write_text(manifest.to_json())
    record = BuildRecord(
        created=datetime.now(UTC).replace(microsecond=0),
        timings=Timings(total_s=round(seconds, 3)),
        parent_folders={name.ref: str(Path(model_dir).resolve())},
    )
    (out / BUILD_RECORD_FILE).write_text(record.to_json())
    return manifest
