"""Recipe loading: mergekit YAML unchanged (bare or under merge:), and one-line errors that name
file:line and the field, with a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.errors import RecipeError
from publisher.merge.plan import evaluate_setting
from publisher.recipe import ConditionalParameter, load_recipe

LAZY = """\
slices:
  - sources:
      - model: org/one
        layer_range: [0, 32]
      - model: org/two
        layer_range: [0, 32]
merge_method: slerp
base_model: org/one
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
"""


def test_bare_mergekit_yaml_and_merge_section_load_the_same(recipe_file: Callable[..., Path]) -> None:
    bare = load_recipe(recipe_file(LAZY, "bare.yaml"))
    nested_text = "name: org/merged\nversion: 1.2.3\nmerge:\n" + "".join(f"  {line}\n" for line in LAZY.splitlines())
    nested = load_recipe(recipe_file(nested_text, "nested.yaml"))
    assert bare.merge == nested.merge
    assert nested.recipe.name == "org/merged" and nested.recipe.version == "1.2.3"
    assert bare.recipe.seed == 0


def test_our_sections_ride_along_a_bare_mergekit_file(recipe_file: Callable[..., Path]) -> None:
    loaded = load_recipe(recipe_file("name: org/x\nversion: 1.0.0\nseed: 7\n" + LAZY))
    assert loaded.recipe.seed == 7 and loaded.merge.merge_method == "slerp"


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (("merge_method: slerp", "merge_methd: slerp"), 7, "unknown key 'merge_methd' (did you mean 'merge_method'?)"),
        (("merge_method: slerp", "merge_method: slurp"), 7, "unknown merge_method 'slurp' (did you mean 'slerp'?)"),
        (("    - value: 0.5", "    - value: 1.5"), 15, "t must be in [0.0, 1.0], got 1.5"),
        (("layer_range: [0, 32]\n      - model: org/two", "layer_range: [4, 2]\n      - model: org/two"), 4, "layer_range [4, 2]"),
        (("dtype: bfloat16", "dtype: bfloat61"), 16, "unknown dtype"),
        (("base_model: org/one\n", ""), 1, "slerp needs a base model"),
        (("      - model: org/two\n        layer_range: [0, 32]\n", "      - model: org/two\n        layer_range: [0, 30]\n"), 2, "same number of layers"),
    ],
)
def test_bad_recipes_name_file_line_and_field(
    recipe_file: Callable[..., Path], edit: tuple[str, str], line: int, message: str
) -> None:
    assert edit[0] in LAZY
    path = recipe_file(LAZY.replace(edit[0], edit[1], 1))
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    text = str(e.value)
    assert f"{path}:{line}" in text, text
    assert message in text
    assert "\n" not in text


def test_unknown_key_in_our_sections_suggests_the_field(recipe_file: Callable[..., Path]) -> None:
    path = recipe_file("name: org/x\ncard:\n  lisence: mit\nmerge:\n  merge_method: linear\n  models:\n    - model: a/b\n      parameters: {weight: 1}\n")
    with pytest.raises(RecipeError, match=r":3: card.lisence: unknown key 'lisence' \(did you mean 'license'\?\)"):
        load_recipe(path)


def test_bad_name_version_and_yaml(recipe_file: Callable[..., Path]) -> None:
    labelled = load_recipe(recipe_file("name: not a repo\n" + LAZY))
    assert labelled.recipe.name is None and labelled.recipe.label == "not a repo"
    assert "is not a repo id" in labelled.warnings[0]
    with pytest.raises(RecipeError, match="not a repo id"):
        load_recipe(recipe_file("name: not a repo\n" + LAZY), strict=True)
    with pytest.raises(RecipeError, match="not a semantic version"):
        load_recipe(recipe_file("version: one\n" + LAZY))
    with pytest.raises(RecipeError, match=r"recipe.yaml:2: invalid YAML"):
        load_recipe(recipe_file("a: [1, 2\nb: 3\n"))
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(Path("/nonexistent/recipe.yaml"))


def test_model_counts_and_modules(recipe_file: Callable[..., Path]) -> None:
    three = LAZY.replace("      - model: org/two\n", "      - model: org/two\n        layer_range: [0, 32]\n      - model: org/three\n", 1)
    with pytest.raises(RecipeError, match="slerp takes at most 2 models"):
        load_recipe(recipe_file(three))
    with pytest.raises(RecipeError, match="'modules' with several modules"):
        load_recipe(recipe_file("merge_method: linear\nmodules: {}\n"))
    with pytest.raises(RecipeError, match="exactly one of 'models' or 'slices'"):
        load_recipe(recipe_file("merge_method: linear\n"))


def test_evaluate_setting_follows_mergekit() -> None:
    grad = [0.0, 0.5, 0.3, 0.7, 1.0]
    assert evaluate_setting("x", grad, 0.0) == 0.0
    assert evaluate_setting("x", grad, 1.0) == 1.0
    # t = 10/31: scaled = 1.2903..., between stops 1 and 2
    t = 10 / 31
    scaled = t * 4
    assert evaluate_setting("x", grad, t) == pytest.approx((1 - (scaled - 1)) * 0.5 + (scaled - 1) * 0.3)
    conds = [
        ConditionalParameter(filter="self_attn", value=grad),
        ConditionalParameter(filter="mlp", value=[1.0, 0.0]),
        ConditionalParameter(value=0.5),
    ]
    assert evaluate_setting("model.layers.0.self_attn.q_proj.weight", conds, 1.0) == 1.0
    assert evaluate_setting("model.layers.0.mlp.up_proj.weight", conds, 1.0) == 0.0
    assert evaluate_setting("model.norm.weight", conds, 1.0) == 0.5
    assert evaluate_setting("x", [True, False], 0.9) is True  # non-numeric lists pick, never interpolate


def test_every_recipe_in_the_repo_validates() -> None:
    recipes = sorted(Path(__file__).parents[1].joinpath("recipes").rglob("*.yaml"))
    assert len(recipes) >= 6
    for path in recipes:
        loaded = load_recipe(path)
        assert loaded.recipe.name, path
