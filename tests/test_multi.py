"""mergekit-multi files: named stages built in order, cached by content key, the final merge
reading them, and a card whose lineage goes through the stages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from publisher.build import BuildOptions, build
from publisher.errors import RecipeError
from publisher.recipe import load_recipe
from tests.multi_texts import MULTI


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
    with pytest.raises(RecipeError, match="only 'publisher build', 'plan' and 'release' read it"):
        load_recipe(path)
    bad = recipe_file(MULTI.replace("t: 0.3", "t: 1.5"), "bad.yaml", **family)
    with pytest.raises(RecipeError) as e:
        build(bad, tmp_path / "bad", _opts())
    assert e.value.line().startswith(f"{bad}:11: parameters.t") and "1.5" in e.value.line()  # the user's file and line
    two_finals = recipe_file(MULTI.replace("name: blend-ab\n", ""), "two.yaml", **family)
    with pytest.raises(RecipeError, match="one final merge"):
        build(two_finals, tmp_path / "x", _opts())
    cycle = MULTI.replace("model: {base}", "model: blend-ab2").replace("---\n", "---\nname: blend-ab2\n")
    cycle = cycle.replace("      - model: {b}\n", "      - model: blend-ab2\n") + "---\nmerge_method: linear\nmodels:\n  - model: blend-ab\n    parameters: {weight: 1}\n"
    with pytest.raises(RecipeError, match="cycle"):
        build(recipe_file(cycle, "cycle.yaml", **family), tmp_path / "y", _opts())


THREE = MULTI.replace("---\nmerge_method: linear", "---\nname: stage-2\nmerge_method: linear") + """\
---
merge_method: ties
base_model: {base}
models:
  - model: stage-2
    parameters: {weight: 0.5, density: 0.5, lamda: 0.1}
  - model: {ft1}
    parameters: {weight: 0.5, density: 0.5}
dtype: bfloat16
"""


def test_plan_prints_every_stage_header_only(
    recipe_file: Callable[..., Path], family: dict[str, Path], cli: Callable[..., Any], tmp_path: Path
) -> None:
    """plan reads a mergekit-multi file: each stage planned in build order, a later stage
    against the tensors the earlier one would write; nothing built, errors at the user's lines."""
    path = recipe_file(THREE, "multi.yaml", **family)
    res = cli("plan", path, "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert [s["stage"] for s in data["stages"]] == ["blend-ab", "stage-2", None]
    first, second, final = data["stages"]
    assert first["method"] == "slerp" and first["layers"] == 32 and first["line"] == 1
    assert second["models"] == ["blend-ab", str(family["base"])]  # the stage by its name, not a folder
    assert final["method"] == "ties" and final["models"][1] == "stage-2" and final["layers"] == 32
    assert final["tensors"] == first["tensors"] and final["output_bytes"] == first["output_bytes"]
    # the unknown parameter is warned about at its line in the user's file (line 27)
    assert any(w.startswith(f"{path}:27:") and "'lamda' has no effect" in w for w in final["warnings"])
    assert f"{path}:27:" in " ".join(res.err.split())
    assert not (tmp_path / "multi.stages").exists() and not list(tmp_path.glob("*.stages"))
    text = cli("plan", path)
    assert text.code == 0, text.err
    flat = " ".join(text.out.split())
    assert "stage blend-ab" in flat and "stage stage-2" in flat and "final merge" in flat
    assert "publisher-plan-" not in res.out + text.out  # no temporary folder is shown: stages by name
    assert "Slerp" in flat or "slerp" in flat.lower()
    # a bad value in a later document: one line at the user's file and line, exit 2
    bad = recipe_file(THREE.replace("density: 0.5, lamda: 0.1", "density: 1.5"), "bad.yaml", **family)
    res = cli("plan", bad)
    assert res.code == 2 and "\n" not in res.err.strip()
    assert f"{bad}:27:" in res.err and "density" in res.err
    assert cli("plan", bad, "--strict").code == 2
    strict = cli("plan", path, "--strict")
    assert strict.code == 2 and f"{path}:27:" in strict.err and "strict" in strict.err


def test_changed_stage_rebuilds_the_final_merge(
    recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path
) -> None:
    """The final merge is cached by content key too: a changed stage rebuilds it in place
    (built again without deleting anything), and the result equals a fresh build."""
    path = recipe_file(MULTI, "multi.yaml", **family)
    out = tmp_path / "final"
    build(path, out, _opts())
    before = load_file(out / "model.safetensors")
    again = build(path, out, _opts())
    assert again.skipped
    path.write_text(path.read_text().replace("t: 0.3", "t: 0.6"))
    rebuilt = build(path, out, _opts())
    assert not rebuilt.skipped
    after = load_file(out / "model.safetensors")
    fresh_out = tmp_path / "fresh"
    build(path, fresh_out, _opts())
    fresh = load_file(fresh_out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in after)
    assert all(torch.equal(after[k], fresh[k]) for k in fresh)


def test_plan_of_a_stage_to_publish(recipe_file: Callable[..., Path], family: dict[str, Path], cli: Callable[..., Any]) -> None:
    """A stage named with a repo id keeps its name (a repo) and the final's version; the final
    merge plans against it under that repo id."""
    text = MULTI.replace("name: blend-ab", "name: acme/blend-ab").replace("model: blend-ab", "model: acme/blend-ab")
    path = recipe_file(text.replace("---\n", "---\nname: acme/final\nversion: 2.0.0\n"), "multi.yaml", **family)
    res = cli("plan", path, "--json")
    assert res.code == 0, res.err
    stage, final = json.loads(res.out)["stages"]
    assert stage["stage"] == "acme/blend-ab" and stage["name"] == "acme/blend-ab"
    assert final["name"] == "acme/final" and final["models"][0] == "acme/blend-ab"
