"""Merge parameters evaluated per layer the way mergekit does (filters, gradients, precedence)."""

from __future__ import annotations

import pytest
import yaml

from publisher.card.params import evaluate_setting, parameter_table, parameter_tables
from publisher.merge.methods import REGISTRY
from publisher.recipe import ConditionalParameter, MergeConfig
from publisher.standins import TINY, tensor_plan, with_layers

NAMES = [t.name for t in tensor_plan(TINY)]


def merge(text: str) -> MergeConfig:
    return MergeConfig.model_validate(yaml.safe_load(text))


def mergekit_gradient(stops: list[float], t: float) -> float:
    """mergekit's interpolation, written out from its description."""
    scaled = t * (len(stops) - 1)
    i0 = int(scaled)
    i1 = min(len(stops) - 1, i0 + 1)
    frac = scaled - i0
    return (1 - frac) * stops[i0] + frac * stops[i1]


@pytest.mark.parametrize("t", [0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_gradient_interpolation(t: float) -> None:
    stops = [0, 0.5, 0.3, 0.7, 1]
    value, decided = evaluate_setting("model.layers.3.mlp.up_proj.weight", stops, t)
    assert value == pytest.approx(mergekit_gradient(stops, t)) and decided is None


def test_first_matching_filter_wins_and_unfiltered_matches_all() -> None:
    setting = [
        ConditionalParameter(filter="self_attn", value=0.1),
        ConditionalParameter(filter="q_proj", value=0.9),  # never reached for q_proj: self_attn came first
        ConditionalParameter(value=0.5),
    ]
    assert evaluate_setting("model.layers.0.self_attn.q_proj.weight", setting, 0) == (0.1, "self_attn")
    assert evaluate_setting("model.layers.0.mlp.up_proj.weight", setting, 0) == (0.5, None)
    assert evaluate_setting("x", [ConditionalParameter(filter="self_attn", value=1)], 0) == (None, None)
    # non-numeric lists pick by index
    assert evaluate_setting("x", ["a", "b", "c"], 0.6) == ("b", None)


def test_slices_restart_t_and_one_layer_slices_use_t_1() -> None:
    cfg = merge("""
slices:
  - sources: [{model: a, layer_range: [0, 4]}, {model: b, layer_range: [0, 4]}]
  - sources: [{model: a, layer_range: [4, 5]}, {model: b, layer_range: [4, 5]}]
merge_method: slerp
base_model: a
parameters: {t: [0, 1]}
""")
    names = [t.name for t in tensor_plan(with_layers(TINY, 5))]
    table = parameter_table("t", cfg, names, 5)
    assert [c.label for c in table.columns] == ["other"]
    # slice 1: t = 0, 1/3, 2/3, 1; slice 2 has one layer: t = 1
    assert [(b.layers, b.values) for b in table.bands] == [("0", ["0"]), ("1", ["0.333"]), ("2", ["0.667"]), ("3–4", ["1"])]
    # outside the layers t = 0
    assert dict(table.outside)["model.embed_tokens.weight"] == "0"


def test_precedence_model_over_slice_over_global_over_default() -> None:
    cfg = merge("""
models:
  - model: base
  - model: ft1
    parameters: {weight: [1, 0], density: 0.3}
  - model: ft2
merge_method: task_arithmetic
base_model: base
parameters: {weight: 0.25, normalize: true}
""")
    tables = {(t.name, t.model): t for t in parameter_tables(cfg, REGISTRY["task_arithmetic"], NAMES, 32)}
    assert tables[("normalize", None)].constant == "true"
    assert tables[("lambda", None)].constant == "1" and tables[("lambda", None)].setting.startswith("not set")
    ft1 = tables[("weight", "ft1")]
    assert ft1.constant is None and ft1.bands[0].values == ["1"] and ft1.bands[-1].values == ["0"]
    assert tables[("weight", "ft2")].constant == "0.25"  # the global setting
    assert tables[("density", "ft1")].constant == "0.3"
    assert tables[("density", "ft2")].constant == "1"  # method default
    assert ("weight", "base") not in tables and ("density", "base") not in tables


def test_constant_bands_collapse() -> None:
    cfg = merge("""
slices:
  - sources: [{model: a, layer_range: [0, 32]}, {model: b, layer_range: [0, 32]}]
merge_method: slerp
base_model: a
parameters:
  t:
    - {filter: self_attn, value: 0.3}
    - value: 0.6
""")
    table = parameter_table("t", cfg, NAMES, 32)
    assert [(c.label, len(c.members)) for c in table.columns] == [("self_attn", 4), ("other", 5)]
    assert [(b.layers, b.values) for b in table.bands] == [("0–31", ["0.3", "0.6"])]
    assert table.setting == "self_attn: 0.3, else: 0.6"
