"""The streaming build's measured pass recomputes tensors: they equal the written ones byte for
byte (merged, FP8 codes and scales), and one that does not is one error naming the tensor."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.build import BuildOptions, build, load_plan, merged_variant, quantized_variants
from publisher.check.measure import Target, measure
from publisher.check.recompute import Recomputed, RecomputeMismatch
from publisher.merge.compute import tensor_sha256
from publisher.merge.io import LocalSource
from publisher.tensors import ModelFiles, TensorReader
from tests.check.conftest import recipe_text


def _built(tmp_path: Path, chars_models: dict[str, Path]) -> tuple[Path, Path]:
    recipe = tmp_path / "r.yaml"
    models = f"[{{model: {chars_models['a']}}}, {{model: {chars_models['b']}}}]"
    recipe.write_text(recipe_text(models, method="slerp", base=str(chars_models["a"]), params="{t: 0.4}",
                                  extra="quantize: [{scheme: fp8-dynamic}]\ncard: {license: mit}\n"))
    out = tmp_path / "out"
    build(recipe, out, BuildOptions(quiet=True, checks=False, render_cards=False))
    return recipe, out


def _written_digests(out: Path) -> dict[str, dict[str, str]]:
    """What the engine records while writing: the sha256 of every tensor's bytes, per variant."""
    reader = TensorReader()
    digests = {}
    for name, folder in (("merged", out), ("FP8", out / "variants" / "FP8")):
        files = ModelFiles.open(folder)
        digests[name] = {n: tensor_sha256(reader.read(info)) for n, info in files.tensors.items()}
    reader.close()
    return digests


def test_recomputed_tensors_are_the_written_ones(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    recipe, out = _built(tmp_path, chars_models)
    plan = load_plan(recipe)
    variants = [merged_variant(plan), *quantized_variants(plan)]
    again = Recomputed(plan, variants, _written_digests(out), LocalSource())
    for v in variants:
        for name in ModelFiles.open(out / v.folder if v.folder else out).tensors:
            again.tensor(v, name)  # raises unless its sha256 is the written one
    assert again.tensors_computed >= len(plan.tensors)
    reads = again.reads_for(out)
    r = measure([Target("merged", out, "."), Target("FP8", out / "variants" / "FP8", "variants/FP8", compare=True)],
                tokens=48, reads=reads)
    files = measure([Target("merged", out, "."), Target("FP8", out / "variants" / "FP8", "variants/FP8", compare=True)],
                    tokens=48)
    assert [m.model_dump(exclude={"seconds"}) for m in r.measurements] == \
        [m.model_dump(exclude={"seconds"}) for m in files.measurements]


def test_a_recomputed_tensor_unlike_the_published_one_is_one_error(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    recipe, out = _built(tmp_path, chars_models)
    plan = load_plan(recipe)
    variants = [merged_variant(plan), *quantized_variants(plan)]
    digests = _written_digests(out)
    digests["FP8"]["model.layers.2.mlp.down_proj.weight_scale"] = "0" * 64
    again = Recomputed(plan, variants, digests, LocalSource())
    with pytest.raises(RecomputeMismatch) as caught:
        measure([Target("merged", out, "."), Target("FP8", out / "variants" / "FP8", "variants/FP8", compare=True)],
                tokens=48, reads=again.reads_for(out))
    line = caught.value.line()
    assert "tensor model.layers.2.mlp.down_proj.weight_scale" in line and "sha256 000000000000" in line
    assert "nothing was committed" in line and "\n" not in line
    assert caught.value.exit_code == 1
