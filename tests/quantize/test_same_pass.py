"""``publisher build`` with a ``quantize:`` section: FP8 folders from the merge's single pass.

The same-pass variant must be the same bytes as ``publisher quantize`` run on the merged
folder afterwards (shards, index, config.json), and bad quantize input must fail before
anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.build import BuildOptions, build
from publisher.manifest import load_manifest
from publisher.quantize import quantize_model
from publisher.tensors import ModelFiles, sha256_file

SLERP_FP8 = """\
name: test/slerp
version: 1.0.0
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
merge_method: slerp
base_model: {a}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - value: 0.5
dtype: bfloat16
quantize:
{quantize}
"""
BOTH = """\
  - scheme: fp8-dynamic
  - scheme: fp8-block
    ignore: ["re:.*layers\\\\.3[01]\\\\.mlp\\\\..*"]
"""


def test_same_pass_equals_standalone_quantize(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    recipe = recipe_file(SLERP_FP8, a=family["a"], b=family["b"], quantize=BOTH)
    out = tmp_path / "build"
    shard = 30_000
    result = build(recipe, out, BuildOptions(quiet=True, shard_bytes=shard, threads=2))
    variants = {v.name: v for v in result.manifest.variants}
    assert set(variants) == {"merged", "FP8", "FP8-BLOCK"}
    assert variants["FP8"].repo_id == "test/slerp-FP8" and variants["FP8"].folder == "variants/FP8"
    assert variants["FP8"].quantization is not None and variants["FP8"].quantization["scheme"] == "fp8-dynamic"
    assert variants["FP8-BLOCK"].quantization is not None
    assert "model.layers.31.mlp.up_proj" in variants["FP8-BLOCK"].quantization["ignore"]
    for name, scheme, ignore in (("FP8", "fp8-dynamic", []), ("FP8-BLOCK", "fp8-block", [r"re:.*layers\.3[01]\.mlp\..*"])):
        same_pass = out / "variants" / name
        standalone = quantize_model(out, tmp_path / f"standalone-{name}", scheme, ignore=ignore, max_shard_bytes=shard)
        tensor_files = [f.path for f in standalone.files if f.path.endswith((".safetensors", ".json")) and "token" not in f.path]
        assert len([p for p in tensor_files if p.endswith(".safetensors")]) > 1
        for rel in tensor_files:
            assert sha256_file(same_pass / rel) == sha256_file(standalone.out / rel), (name, rel)
        config = json.loads((same_pass / "config.json").read_text())
        assert config["quantization_config"]["ignore"][-1] == "lm_head"
        fp8 = ModelFiles.open(same_pass)
        assert fp8.tensors["model.layers.5.mlp.down_proj.weight"].dtype == "F8_E4M3"
        recorded = {f.path: f.sha256 for f in variants[name].files}
        for rel in tensor_files:
            assert recorded[rel] == sha256_file(same_pass / rel)
    assert load_manifest(out).variants[1].name == "FP8"


@pytest.mark.parametrize(
    ("quantize", "needle"),
    [
        ("  - scheme: fp9\n", "unknown quantization scheme 'fp9'"),
        ("  - scheme: fp8-dynamic\n    ignore: [model.layers.0.self_attn.k_proj]\n", "fused"),
        ("  - scheme: fp8-dynamic\n  - scheme: fp8-dynamic\n", "two quantize entries"),
        ("  - scheme: fp8-dynamic\n    ignore: ['re:(']\n", "regular expression"),
    ],
)
def test_bad_quantize_section_fails_before_writing(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path, quantize: str, needle: str
) -> None:
    recipe = recipe_file(SLERP_FP8, a=family["a"], b=family["b"], quantize=quantize)
    out = tmp_path / "build"
    res = cli("build", recipe, "--out", out)
    assert res.code == 2, res.err  # type: ignore[attr-defined]
    lines = [line for line in res.err.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and needle in lines[0] and "recipe.yaml" in lines[0], res.err  # type: ignore[attr-defined]
    assert not out.exists()
