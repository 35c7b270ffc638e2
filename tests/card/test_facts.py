"""Facts read from the files: sizes, dtypes, quantization, context, architecture."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from cardkit import FP8_DYNAMIC_CONFIG, fp8_plan, write_sparse_model

from publisher.card.facts import human_count, model_facts, short_tokens, size_class, strip_of
from publisher.errors import CardError
from publisher.standins import SEVEN_B, TINY, mistral_config, tensor_plan
from publisher.tensors import PlannedTensor

MISTRAL_7B_PARAMS = 7_241_732_096


@pytest.mark.parametrize(
    ("n", "hub", "cls"),
    [
        (MISTRAL_7B_PARAMS, "7.24B", "7B"),
        (8_030_261_248, "8.03B", "8B"),
        (70_553_706_496, "70.6B", "70B"),
        (1_543_714_304, "1.54B", "1.5B"),
        (3_821_079_552, "3.82B", "3.8B"),  # Phi-3-mini: not filed as 3.5B
        (6_738_415_616, "6.74B", "6.7B"),
        (8_829_407_232, "8.83B", "8.8B"),
        (494_032_768, "494M", "490M"),
        (22_713_216, "22.7M", "22M"),
        (999_700_000, "1B", "990M"),
    ],
)
def test_sizes_the_hub_way_and_the_catalog_way(n: int, hub: str, cls: str) -> None:
    assert human_count(n) == hub
    assert size_class(n) == cls


def test_context_shorthand() -> None:
    assert [short_tokens(n) for n in (4096, 32768, 131072, 100000, 512)] == ["4k", "32k", "128k", "100k", "512"]


def test_merged_7b_facts_from_sparse_headers(tmp_path: Path) -> None:
    write_sparse_model(tmp_path, tensor_plan(SEVEN_B, "BF16"), mistral_config(SEVEN_B))
    assert (tmp_path / "model-00001-of-00003.safetensors").stat().st_blocks * 512 < 1 << 20  # sparse
    f = model_facts(tmp_path, context_length=4096)
    assert f.parameter_count == MISTRAL_7B_PARAMS
    assert (f.params, f.size_class, f.dtype, f.quantization) == ("7.24B", "7B", "BF16", None)
    assert f.context.text == "4096 served, 32768 in config (sliding window 4096)"
    assert f.context.short == "4k"
    assert (f.architecture.family, f.architecture.class_name, f.architecture.layers) == ("Mistral", "MistralForCausalLM", 32)
    assert f.task == "text-generation"
    assert f.file_count == 3
    s = strip_of(f, license="apache-2.0", published=date(2024, 3, 20), version="1.0.0")
    assert (s.size, s.quant, s.context, s.license, s.architecture) == ("7B", "BF16", "4k", "apache-2.0", "Mistral")
    assert s.published_text == "Mar 20, 2024"
    assert "Quant: BF16" in s.line()


def test_without_served_context_the_config_speaks(tmp_path: Path) -> None:
    write_sparse_model(tmp_path, tensor_plan(TINY, "BF16"), mistral_config(TINY))
    f = model_facts(tmp_path)
    assert f.context.tokens == 32768 and f.context.short == "32k"
    assert f.context.text == "32768 tokens (sliding window 4096)"


def test_fp8_variant_facts(tmp_path: Path) -> None:
    cfg = dict(mistral_config(SEVEN_B))
    cfg["quantization_config"] = FP8_DYNAMIC_CONFIG
    write_sparse_model(tmp_path, fp8_plan(SEVEN_B), cfg)
    f = model_facts(tmp_path, context_length=4096)
    q = f.quantization
    assert q is not None
    assert (q.label, q.scheme, q.method, q.format) == ("FP8", "fp8-dynamic", "compressed-tensors", "float-quantized")
    assert "per-channel" in q.weights and "per-token" in q.activations and "dynamic" in q.activations
    assert q.ignored == ["lm_head"]
    assert f.dtype == "F8_E4M3" and list(f.dtypes) == ["F8_E4M3", "BF16"]
    assert f.params == "7.24B" and f.size_class == "7B"  # scales add 1.4M elements: still 7.24B
    assert f.quant_label == "FP8"


def test_fp8_block_scheme(tmp_path: Path) -> None:
    cfg = dict(mistral_config(TINY))
    qc = json.loads(json.dumps(FP8_DYNAMIC_CONFIG))
    qc["config_groups"]["group_0"]["weights"].update(strategy="block", block_structure=[128, 128])
    qc["config_groups"]["group_0"]["input_activations"].update(strategy="group", group_size=128)
    cfg["quantization_config"] = qc
    plan = [
        PlannedTensor(t.name, "F8_E4M3", t.shape) if "proj" in t.name else t for t in tensor_plan(TINY, "BF16")
    ] + [PlannedTensor(t.name.replace(".weight", ".weight_scale"), "BF16", (1, 1)) for t in tensor_plan(TINY) if "proj" in t.name]
    write_sparse_model(tmp_path, plan, cfg)
    q = model_facts(tmp_path).quantization
    assert q is not None and q.scheme == "fp8-block"
    assert "128×128 blocks" in q.weights and "per-group (128)" in q.activations


def test_config_claiming_fp8_without_fp8_tensors_is_refused(tmp_path: Path) -> None:
    cfg = dict(mistral_config(TINY))
    cfg["quantization_config"] = FP8_DYNAMIC_CONFIG
    write_sparse_model(tmp_path, tensor_plan(TINY, "BF16"), cfg)
    with pytest.raises(CardError, match="declares FP8 quantization but no tensor is stored in FP8"):
        model_facts(tmp_path)


def test_scale_shape_must_match_the_declared_strategy(tmp_path: Path) -> None:
    cfg = dict(mistral_config(TINY))
    cfg["quantization_config"] = FP8_DYNAMIC_CONFIG  # per-channel
    plan = [PlannedTensor(t.name, "F8_E4M3", t.shape) if "proj" in t.name else t for t in tensor_plan(TINY, "BF16")]
    plan += [PlannedTensor(t.name.replace(".weight", ".weight_scale"), "BF16", (1,)) for t in tensor_plan(TINY) if "proj" in t.name]
    write_sparse_model(tmp_path, plan, cfg)
    with pytest.raises(CardError, match=r"per-channel FP8 but .*weight_scale has shape \[1\]"):
        model_facts(tmp_path)


def test_served_context_longer_than_the_model_is_refused(tmp_path: Path) -> None:
    write_sparse_model(tmp_path, tensor_plan(TINY, "BF16"), mistral_config(TINY))
    with pytest.raises(CardError, match="more than the model's max_position_embeddings 32768"):
        model_facts(tmp_path, context_length=65536)


def test_missing_files_are_a_card_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CardError, match="cannot read the model files"):
        model_facts(tmp_path)
