"""Sharded parents, as real checkpoints are (several model-0000N-of-0000M files and an index, one
layer's tensors split across two files): the same bytes as from one-file parents, and every
shard hashed from the engine's reads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.build import BuildOptions, build
from publisher.check.run import CheckOptions
from publisher.standins import TINY, generate_family
from publisher.tensors import sha256_file

SHARD_BYTES = 9_000  # TINY layers are ~5 kB in bf16: seven shards, layers split across them

RECIPES = {
    "slerp": """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
merge_method: slerp
base_model: {a}
parameters:
  t: [{filter: self_attn, value: [0, 0.5, 0.3, 0.7, 1]}, {value: 0.5}]
dtype: bfloat16
""",
    "ties": """\
merge_method: ties
base_model: {base}
models:
  - model: {ft1}
    parameters: {weight: 0.6, density: 0.5}
  - model: {ft2}
    parameters: {weight: 0.5, density: 0.7}
dtype: bfloat16
""",
}


@pytest.fixture(scope="module")
def sharded_family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_family(tmp_path_factory.mktemp("sharded"), TINY, max_shard_bytes=SHARD_BYTES)


def _split_layers(model: Path) -> set[int]:
    """Layers whose tensors live in more than one file of ``model``."""
    weight_map = json.loads((model / "model.safetensors.index.json").read_text())["weight_map"]
    files: dict[int, set[str]] = {}
    for name, file in weight_map.items():
        if name.startswith("model.layers."):
            files.setdefault(int(name.split(".")[2]), set()).add(file)
    return {layer for layer, f in files.items() if len(f) > 1}


@pytest.mark.parametrize("method", sorted(RECIPES))
def test_sharded_parents_merge_to_the_same_bytes(
    method: str, family: dict[str, Path], sharded_family: dict[str, Path],
    recipe_file: Callable[..., Path], tmp_path: Path,
) -> None:
    for model in sharded_family.values():
        assert len(list(model.glob("model-*-of-*.safetensors"))) > 2
        assert _split_layers(model), f"{model.name}: no layer split across two shards"
    one_file = build(recipe_file(RECIPES[method], "one.yaml", **family), tmp_path / "one", BuildOptions(quiet=True, check_options=CheckOptions(measure=False)))
    sharded = build(recipe_file(RECIPES[method], "sharded.yaml", **sharded_family), tmp_path / "sharded",
                    BuildOptions(quiet=True, check_options=CheckOptions(measure=False)))
    outputs = sorted(p.name for p in (tmp_path / "one").glob("*.safetensors"))
    assert outputs and outputs == sorted(p.name for p in (tmp_path / "sharded").glob("*.safetensors"))
    for name in outputs:
        assert sha256_file(tmp_path / "one" / name) == sha256_file(tmp_path / "sharded" / name), name
    def weights(result: object) -> list[object]:
        files = result.manifest.variant("merged").files  # type: ignore[attr-defined]
        return [f for f in files if "safetensors" in f.path]

    assert weights(one_file) == weights(sharded) != []

    # every shard of every parent is recorded with its true sha256
    hashed = {(entry.ref, f.path): f.sha256 for entry in sharded.manifest.inputs for f in entry.files}
    shards = [(m.name, s.name) for m in sharded_family.values() for s in m.glob("model-*.safetensors")]
    used = {entry.ref for entry in sharded.manifest.inputs}
    shards = [(m, s) for m, s in shards if m in used]
    assert shards
    for model, shard in shards:
        assert hashed.get((model, shard)) == sha256_file(sharded_family[model] / shard), (model, shard)
