"""What mergekit 0.1.5 accepts, we accept: keys and parameters with no effect are one-line
warnings (errors under --strict / publish.strict), flags read as numbers, every reference form.

The configs are written in the shapes published cards use (issue 11's corpus), not copied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.errors import RecipeError
from publisher.recipe import load_recipe
from publisher.references import parse_reference

TIES = """\
models:
  - model: org/base
  - model: org/ft1
    parameters:
      weight: 0.5
      density: 0.5
  - model: org/ft2
    parameters:
      weight: 0.5
      density: 0.5
merge_method: ties
base_model: org/base
parameters:
  normalize: 1.0
  int8_mask: 1.0
dtype: bfloat16
"""


def _one_line(text: str) -> None:
    assert "\n" not in text


def test_unknown_key_is_a_warning_with_did_you_mean(recipe_file: Callable[..., Path]) -> None:
    path = recipe_file(TIES.replace("dtype: bfloat16", "dype: bfloat16"))
    loaded = load_recipe(path)
    assert loaded.merge.dtype is None
    [warning] = loaded.warnings
    assert f"{path}:16: dype: unknown key 'dype' has no effect (did you mean 'dtype'?)" in warning
    _one_line(warning)
    with pytest.raises(RecipeError, match=r":16: dype: unknown key 'dype' has no effect .*strict"):
        load_recipe(path, strict=True)


def test_publish_strict_makes_warnings_errors(recipe_file: Callable[..., Path]) -> None:
    text = "publish:\n  strict: true\nmerge:\n" + "".join(f"  {line}\n" for line in TIES.replace("dtype:", "dype:").splitlines())
    with pytest.raises(RecipeError, match="unknown key 'dype'"):
        load_recipe(recipe_file(text))


def test_typo_of_a_required_key_is_still_an_error(recipe_file: Callable[..., Path]) -> None:
    with pytest.raises(RecipeError, match=r":11: merge_methd: unknown key 'merge_methd' \(did you mean 'merge_method'\?\)"):
        load_recipe(recipe_file(TIES.replace("merge_method:", "merge_methd:")))


def test_numbers_as_flags_and_strings_as_numbers(recipe_file: Callable[..., Path]) -> None:
    loaded = load_recipe(recipe_file(TIES))
    assert loaded.warnings == []
    assert loaded.merge.parameters == {"normalize": 1.0, "int8_mask": 1.0}
    ram = "merge_method: ram\nbase_model: org/base\nmodels:\n  - model: org/ft1\n  - model: org/ft2\nparameters:\n  epsilon: 1e-5\n"
    assert load_recipe(recipe_file(ram)).merge.parameters == {"epsilon": 1e-5}
    with pytest.raises(RecipeError, match=r"int8_mask must be true or false, got 0\.5"):
        load_recipe(recipe_file(TIES.replace("int8_mask: 1.0", "int8_mask: 0.5")))


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("multislerp", "  normalize: true\n", "parameter 'normalize' has no effect for multislerp"),
        ("linear", "  select_topk: 0.5\n", "parameter 'select_topk' has no effect for linear"),
        ("sce", "  allow_negative_weights: true\n", "parameter 'allow_negative_weights' has no effect for sce"),
        ("ties", "  lamda: 0.5\n", "parameter 'lamda' has no effect for ties (did you mean 'lambda'?)"),
    ],
)
def test_unused_parameters_are_warnings(recipe_file: Callable[..., Path], method: str, params: str, message: str) -> None:
    text = f"merge_method: {method}\nbase_model: org/base\nmodels:\n  - model: org/ft1\n  - model: org/ft2\nparameters:\n{params}"
    loaded = load_recipe(recipe_file(text))
    assert len(loaded.warnings) == 1 and message in loaded.warnings[0], loaded.warnings


def test_per_model_weight_of_model_stock_has_no_effect(recipe_file: Callable[..., Path]) -> None:
    text = "merge_method: model_stock\nbase_model: org/base\nmodels:\n" + "".join(
        f"  - model: org/ft{i}\n    parameters:\n      weight: 0.5\n" for i in (1, 2, 3)
    )
    loaded = load_recipe(recipe_file(text))
    assert len(loaded.warnings) == 3
    assert "parameter 'weight' has no effect for model_stock" in loaded.warnings[0]
    fusion = "merge_method: arcee_fusion\nbase_model: org/base\nmodels:\n  - model: org/ft1\n    parameters:\n      weight: 0.5\n"
    [warning] = load_recipe(recipe_file(fusion)).warnings
    assert ":6: models.0.parameters.weight: parameter 'weight' has no effect for arcee_fusion" in warning
    lin = "merge_method: linear\nmodels:\n  - model: org/a\n    parameters:\n      weight: 1\n      normalize: false\n  - model: org/b\n    parameters: {weight: 1}\n"
    [warning] = load_recipe(recipe_file(lin)).warnings
    assert "'normalize' is a global parameter of linear: a per-model value has no effect" in warning


def test_duplicate_model_is_one_input_with_a_warning(recipe_file: Callable[..., Path]) -> None:
    text = "merge_method: linear\nmodels:\n  - model: org/a\n    parameters: {weight: 1}\n  - model: org/b\n    parameters: {weight: 1}\n  - model: org/a\n    parameters: {weight: 2}\n"
    path = recipe_file(text)
    [warning] = load_recipe(path).warnings
    assert f"{path}:7: models.2.model: org/a is listed more than once: it is one input" in warning
    with pytest.raises(RecipeError, match="listed more than once"):
        load_recipe(path, strict=True)


def test_one_model_task_arithmetic_is_the_base(recipe_file: Callable[..., Path]) -> None:
    text = "merge_method: task_arithmetic\nbase_model: org/base\nmodels:\n  - model: org/base\n    parameters: {weight: 1.0}\n"
    assert load_recipe(recipe_file(text)).warnings == []


def test_every_reference_form_mergekit_accepts(recipe_file: Callable[..., Path]) -> None:
    assert str(parse_reference("org/m@v1+org/lora@abc")) == "org/m@v1+org/lora@abc"
    assert str(parse_reference({"model": {"path": "org/m", "revision": "v1"}, "lora": "org/l"})) == "org/m@v1+org/l"
    assert str(parse_reference("./local/folder")) == "./local/folder"
    with pytest.raises(ValueError, match="more than one '@'"):
        parse_reference("org/m@a@b")
    text = (
        "merge_method: slerp\nbase_model: {model: {path: org/one, revision: v2}}\nslices:\n  - sources:\n"
        "      - model: {model: {path: org/one, revision: v2}}\n        layer_range: [0, 4]\n"
        "      - model: org/two\n        revision: main\n        layer_range: [0, 4]\nparameters: {t: 0.5}\n"
    )
    loaded = load_recipe(recipe_file(text))
    assert loaded.merge.base_model == "org/one@v2"
    assert [s.model for s in loaded.merge.slices[0].sources] == ["org/one@v2", "org/two@main"]  # type: ignore[index]
    with pytest.raises(RecipeError, match="contradicts"):
        load_recipe(recipe_file(text.replace("org/two\n", "org/two@v9\n")))
    with pytest.raises(RecipeError, match=r":2: base_model: .*more than one '@'"):
        load_recipe(recipe_file(text.replace("base_model: {model: {path: org/one, revision: v2}}", "base_model: a/b@c@d")))


def test_name_that_is_not_a_repo_id_is_a_label(recipe_file: Callable[..., Path]) -> None:
    loaded = load_recipe(recipe_file("name: stage-one\n" + TIES))
    assert loaded.recipe.name is None and loaded.recipe.label == "stage-one"
    assert "name 'stage-one' is not a repo id" in loaded.warnings[0]


def test_plan_prints_warnings_and_strict_refuses(
    recipe_file: Callable[..., Path], family: dict[str, Path], cli: Callable[..., object]
) -> None:
    text = (
        "merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {weight: 0.5}\n"
        "  - model: {b}\n    parameters: {weight: 0.5, density: 0.3}\ndype: float16\n"
    )
    path = recipe_file(text, a=family["a"], b=family["b"])
    res = cli("plan", path)
    assert res.code == 0, res.err  # type: ignore[attr-defined]
    err = " ".join(res.err.split())  # type: ignore[attr-defined]
    assert "parameter 'density' has no effect for linear" in err and "unknown key 'dype' has no effect" in err
    strict = cli("plan", path, "--strict")
    assert strict.code == 2 and "strict" in strict.err  # type: ignore[attr-defined]
    out = path.parent / "out"
    built = cli("build", path, "--out", out, "--quiet", "--no-card", "--threads", "1")
    assert built.code == 0, built.err  # type: ignore[attr-defined]
    assert "unknown key 'dype' has no effect" in " ".join(built.err.split())  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["linear", "karcher", "model_stock"])
def test_duplicate_gives_the_bytes_of_the_config_without_it(
    recipe_file: Callable[..., Path], family: dict[str, Path], tmp_path: Path, method: str
) -> None:
    """mergekit 0.1.5 refuses a duplicate ("Duplicate merge inputs"); we merge it once, as
    mergekit's inputs keyed by model reference did, so the bytes are those without it."""
    from safetensors.torch import load_file

    from publisher.build import BuildOptions, build

    base = "base_model: {base}\n" if method == "model_stock" else ""
    names = ["ft1", "ft2", "ft3"] if method == "model_stock" else ["a", "b"]
    entries = "".join(f"  - model: {{{n}}}\n    parameters: {{weight: {0.3 + 0.2 * i}}}\n" for i, n in enumerate(names))
    once = f"merge_method: {method}\n{base}dtype: bfloat16\nmodels:\n{entries}"
    twice = once + f"  - model: {{{names[0]}}}\n    parameters: {{weight: 0.9}}\n"
    outs = []
    for label, text in (("once", once), ("twice", twice)):
        path = recipe_file(text, f"{label}.yaml", **family)
        out = tmp_path / label
        build(path, out, BuildOptions(threads=1, quiet=True, render_cards=False))
        outs.append(load_file(out / "model.safetensors"))
    assert outs[0].keys() == outs[1].keys()
    assert all(outs[0][k].equal(outs[1][k]) for k in outs[0])


def test_single_module_form_is_the_plain_form(recipe_file: Callable[..., Path]) -> None:
    modular = (
        "merge_method: ties\nbase_model: org/base\nparameters: {normalize: true, lambda: 0.5}\n"
        "modules:\n  default:\n    parameters: {lambda: 0.9}\n    models:\n      - model: org/ft1\n"
        "        parameters: {weight: 0.5, density: 0.5}\n      - model: org/ft2\n        parameters: {weight: 0.5, densty: 0.5}\n"
    )
    path = recipe_file(modular)
    loaded = load_recipe(path)
    assert [m.model for m in loaded.merge.models or []] == ["org/ft1", "org/ft2"]
    assert loaded.merge.parameters == {"normalize": True, "lambda": 0.9}  # the module's win over the global ones
    assert f"{path}:11: models.1.parameters.densty" in loaded.warnings[0]  # lines still point into the module
    with pytest.raises(RecipeError, match="several modules"):
        load_recipe(recipe_file(modular + "  vision:\n    models: [{model: org/v}]\n"))


def test_override_architecture_is_kept_per_model(recipe_file: Callable[..., Path]) -> None:
    """mergekit's ModelReference.override_architecture: one architecture per model, refused when mixed."""
    over = "{model: {path: org/base}, override_architecture: LlamaForCausalLM}"
    text = (
        f"merge_method: task_arithmetic\nbase_model: {over}\nmodels:\n  - model: {over}\n    parameters: {{weight: 1}}\n"
        "  - model: org/ft1\n    parameters: {weight: 0.5}\n"
    )
    loaded = load_recipe(recipe_file(text))
    assert loaded.merge.base_model == "org/base" and loaded.architectures == {"org/base": "LlamaForCausalLM"}
    mixed = text.replace(f"  - model: {over}\n", "  - model: org/base\n")
    with pytest.raises(RecipeError, match=r":4: models.0.model: org/base is read as its own architecture here and as "
                       r"LlamaForCausalLM at line 2: mergekit 0.1.5 refuses to mix architectures"):
        load_recipe(recipe_file(mixed))
    with pytest.raises(RecipeError, match="override_architecture must be an architecture class name"):
        load_recipe(recipe_file(text.replace("override_architecture: LlamaForCausalLM", "override_architecture: 3", 1)))
