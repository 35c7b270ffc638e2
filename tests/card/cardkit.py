"""Test kit for the card tests: build directories with real 7B Mistral safetensors headers that cost no disk.

Each shard is a real safetensors header followed by a hole: the file is extended to its full
length with ``truncate`` (a sparse file), so ``read_header`` validates every offset against
the true size while nothing but the header is ever written. The FP8 variant follows
llm-compressor's FP8_DYNAMIC layout (F8_E4M3 weights, BF16 [out, 1] weight_scale, a
compressed-tensors quantization_config), see shared/fp8-format.md.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from publisher.manifest import (
    BUILD_RECORD_FILE,
    BuildRecord,
    FileEntry,
    InputModel,
    Manifest,
    Variant,
)
from publisher.recipe import load_recipe, model_references
from publisher.standins import SEVEN_B, MistralShape, mistral_config, tensor_plan
from publisher.tensors import PlannedTensor, assign_shards, encode_header, shard_names, write_index

FIXTURES = Path(__file__).parent / "fixtures"
RECIPES = FIXTURES / "recipes"
HUB = FIXTURES / "hub"
SHARD_BYTES = 5_000_000_000
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

FP8_DYNAMIC_CONFIG = {
    "config_groups": {
        "group_0": {
            "format": "float-quantized",
            "input_activations": {
                "actorder": None, "block_structure": None, "dynamic": True, "group_size": None,
                "num_bits": 8, "observer": None, "observer_kwargs": {}, "scale_dtype": None,
                "strategy": "token", "symmetric": True, "type": "float", "zp_dtype": None,
            },
            "output_activations": None,
            "targets": ["Linear"],
            "weights": {
                "actorder": None, "block_structure": None, "dynamic": False, "group_size": None,
                "num_bits": 8, "observer": "memoryless_minmax", "observer_kwargs": {}, "scale_dtype": None,
                "strategy": "channel", "symmetric": True, "type": "float", "zp_dtype": None,
            },
        }
    },
    "format": "float-quantized",
    "global_compression_ratio": None,
    "ignore": ["lm_head"],
    "kv_cache_scheme": None,
    "quant_method": "compressed-tensors",
    "quantization_status": "compressed",
    "sparsity_config": {},
    "transform_config": {},
    "version": "0.19.0",
}

# Publish dates of the seed pages (the build date stands in for the tag date).
SEED_DATES = {
    "MatthieuJ/ING_2003M3_SLERP": datetime(2024, 3, 20, 9, 30, tzinfo=UTC),
    "arcee-ai/saul-mistral-v0.2-7b-slerp": datetime(2024, 3, 25, 9, 30, tzinfo=UTC),
    "osanseviero/mistral-instruct-slerp": datetime(2024, 1, 10, 9, 30, tzinfo=UTC),
    "EmbeddedLLM/Mistral-7B-Merge-02-v0": datetime(2023, 12, 20, 9, 30, tzinfo=UTC),
}


def fp8_plan(shape: MistralShape) -> list[PlannedTensor]:
    out: list[PlannedTensor] = []
    for t in tensor_plan(shape, "BF16"):
        if ".layers." in t.name and any(f".{lin}." in t.name for lin in LINEARS):
            out.append(PlannedTensor(t.name, "F8_E4M3", t.shape))
            out.append(PlannedTensor(t.name.removesuffix(".weight") + ".weight_scale", "BF16", (t.shape[0], 1)))
        else:
            out.append(t)
    return out


def write_sparse_model(folder: Path, tensors: list[PlannedTensor], config: dict[str, object]) -> list[FileEntry]:
    """Shards whose headers are real and whose data is a hole; returns manifest file entries."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = assign_shards(tensors, SHARD_BYTES)
    names = shard_names(len(shards))
    entries: list[FileEntry] = []
    for shard, name in zip(shards, names, strict=True):
        header = encode_header(shard, {"format": "pt"})
        size = len(header) + sum(t.nbytes for t in shard)
        with open(folder / name, "wb") as f:
            f.write(header)
            f.truncate(size)
        entries.append(FileEntry(path=name, size=size, sha256=hashlib.sha256(name.encode()).hexdigest()))
    write_index(folder, shards, names, sum(_numel(t) for t in tensors))
    text = json.dumps(config, indent=2) + "\n"
    (folder / "config.json").write_text(text)
    entries.append(FileEntry(path="config.json", size=len(text), sha256=hashlib.sha256(text.encode()).hexdigest()))
    return entries


def _numel(t: PlannedTensor) -> int:
    n = 1
    for d in t.shape:
        n *= d
    return n


def fake_sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def make_build_dir(
    out: Path,
    recipe_path: Path,
    *,
    shape: MistralShape = SEVEN_B,
    variants: bool = True,
    created: datetime | None = None,
    input_kind: str = "hub",
    local_parents: dict[str, Path] | None = None,
    recipe_text: str | None = None,
    revisions: dict[str, str] | None = None,
) -> Path:
    """A complete build directory for a recipe: merged (BF16) + variants/FP8, manifest, recipe."""
    out.mkdir(parents=True, exist_ok=True)
    text = recipe_text if recipe_text is not None else recipe_path.read_text()
    (out / "recipe.yaml").write_text(text)
    loaded = load_recipe(out / "recipe.yaml")
    r = loaded.recipe
    merged_files = write_sparse_model(out, tensor_plan(shape, "BF16"), mistral_config(shape))
    variant_list = [
        Variant(
            name="merged",
            repo_id=r.name,
            folder="",
            dtype="BF16",
            parameter_count=sum(_numel(t) for t in tensor_plan(shape)),
            files=merged_files,
        )
    ]
    if variants:
        for q in r.quantize:
            suffix = q.suffix or "FP8"
            cfg = dict(mistral_config(shape))
            cfg["quantization_config"] = FP8_DYNAMIC_CONFIG
            plan = fp8_plan(shape)
            files = write_sparse_model(out / "variants" / suffix, plan, cfg)
            variant_list.append(
                Variant(
                    name=suffix,
                    repo_id=f"{r.name}-{suffix}" if r.name else None,
                    folder=f"variants/{suffix}",
                    quantization={"scheme": q.scheme},
                    dtype="F8_E4M3",
                    parameter_count=sum(_numel(t) for t in plan),
                    files=files,
                )
            )
    inputs = []
    for ref in model_references(r.merge):
        local = (local_parents or {}).get(ref)
        kind = "local" if local is not None else input_kind
        inputs.append(
            InputModel(
                ref=ref,
                kind=kind,  # type: ignore[arg-type]
                repo_id=None if kind == "local" else ref,
                revision=None if kind == "local" else (revisions or {}).get(ref, fake_sha(ref)),
                files=[FileEntry(path="model.safetensors", size=1, sha256=hashlib.sha256(ref.encode()).hexdigest())],
            )
        )
    record = BuildRecord(
        created=created or SEED_DATES.get(r.name or "", datetime(2024, 2, 1, 12, 0, tzinfo=UTC)),
        parent_folders={ref: str(p) for ref, p in (local_parents or {}).items()},
    )
    (out / BUILD_RECORD_FILE).write_text(record.to_json())
    manifest = Manifest(
        tool="publisher 0.1.0",
        recipe_name=r.name,
        recipe_version=r.version,
        recipe_sha256=loaded.sha256,
        merge_method=r.merge.merge_method,
        seed=r.seed,
        compute_dtype=r.compute_dtype,
        out_dtype="BF16",
        inputs=inputs,
        variants=variant_list,
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return out
