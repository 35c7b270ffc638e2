"""mergekit-multi files: named stages built in order, cached by content key, the final merge
reading them, and a card whose lineage goes through the stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from publisher.build import BuildOptions, build
from publisher.errors import RecipeError
from publisher.recipe import load_recipe

MULTI = """\
name: blend-ab
merge_method: slerp
base_model: {a}
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
parameters:
  t: 0.3
dtype: bfloat16
---
merge_method: linear
models:
  - model: blend-ab
    parameters: {weight: 0.6}
  - model: {base}
    parameters: {weight: 0.4}
dtype: bfloat16
"""


def _opts() -> BuildOptions:
    return BuildOptions(threads=2, quiet=True)


def test_stages_build_once_and_match_two_single_builds(
    recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    path = recipe_file(MULTI, "multi.yaml", **family)
    out = tmp_path / "final"
    build(path, out, _opts())
    stage = tmp_path / "final.stages" / "blend-ab"
    assert (stage / "model.safetensors").is_file() and (stage / "stage.key").is_file()
    # the same two merges as two ordinary recipes
    first, second = MULTI.split("---\n")
    one = recipe_file(first.replace("name: blend-ab\n", ""), "one.yaml", **family)
    build(one, tmp_path / "one", _opts())
    two = recipe_file(second.replace("blend-ab", str(tmp_path / "one")), "two.yaml", **family)
    build(two, tmp_path / "two", _opts())
    ours, ref = load_file(out / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    # the final card's lineage goes through the stage to its parents
    card = (out / "README.md").read_text()
    assert "blend-ab" in card
    # cached by content: unchanged -> reused; a changed stage document -> rebuilt
    mtime = (stage / "model.safetensors").stat().st_mtime_ns
    key = (stage / "stage.key").read_text()
    import shutil

    shutil.rmtree(out)
    build(path, out, _opts())
    assert (stage / "model.safetensors").stat().st_mtime_ns == mtime
    path.write_text(path.read_text().replace("t: 0.3", "t: 0.5"))
    shutil.rmtree(out)
    build(path, out, _opts())
    assert (stage / "stage.key").read_text() != key
    assert not torch.equal(load_file(out / "model.safetensors")["model.layers.0.mlp.up_proj.weight"], ours["model.layers.0.mlp.up_proj.weight"])


def test_multi_document_errors(recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path) -> None:
    path = recipe_file(MULTI, "multi.yaml", **family)
    with pytest.raises(RecipeError, match="only 'publisher build' reads it"):
        load_recipe(path)
    two_finals = recipe_file(MULTI.replace("name: blend-ab\n", ""), "two.yaml", **family)
    with pytest.raises(RecipeError, match="one final merge"):
        build(two_finals, tmp_path / "x", _opts())
    cycle = MULTI.replace("model: {base}", "model: blend-ab2").replace("---\n", "---\nname: blend-ab2\n")
    cycle = cycle.replace("      - model: {b}\n", "      - model: blend-ab2\n") + "---\nmerge_method: linear\nmodels:\n  - model: blend-ab\n    parameters: {weight: 1}\n"
    with pytest.raises(RecipeError, match="cycle"):
        build(recipe_file(cycle, "cycle.yaml", **family), tmp_path / "y", _opts())
