"""Targets, ignore rules, the variant layout, the config block and refusals of bad input."""

from __future__ import annotations

import pytest
import torch

from publisher.errors import PublisherError, QuantizeError
from publisher.quantize import (
    COMPRESSED_TENSORS_VERSION,
    IgnoreRules,
    get_scheme,
    plan_tensors,
    plan_variant,
    quantization_config,
    quantize_tensor,
    quantize_weight,
    variant_config,
)
from publisher.quantize.targets import is_decoder_linear, module_order
from publisher.standins import MistralShape, mistral_config, tensor_plan
from publisher.tensors import PlannedTensor

SHAPE = MistralShape(hidden=192, intermediate=320, layers=12, heads=3, kv_heads=1, vocab=96)
TENSORS = tensor_plan(SHAPE)
CONFIG = mistral_config(SHAPE)


def test_targets_are_the_decoder_linears() -> None:
    plan = plan_variant(TENSORS, "fp8-dynamic", (), CONFIG)
    assert len(plan.targets) == 7 * SHAPE.layers
    assert all(n.startswith("model.layers.") and n.endswith("_proj.weight") for n in plan.targets)
    for kept in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.3.input_layernorm.weight"):
        assert kept not in plan.targets
    assert plan.ignored_modules == ("lm_head",)
    assert not is_decoder_linear("model.layers.0.self_attn.q_proj.bias", (192,))
    assert not is_decoder_linear("model.layers.0.input_layernorm.weight", (192,))


def test_layout_keeps_order_and_adds_scales() -> None:
    for scheme, scale in (("fp8-dynamic", (320, 1)), ("fp8-block", (3, 2))):
        out = plan_tensors(TENSORS, scheme)
        names = [t.name for t in out]
        i = names.index("model.layers.0.mlp.gate_proj.weight")
        assert out[i] == PlannedTensor("model.layers.0.mlp.gate_proj.weight", "F8_E4M3", (320, 192))
        assert out[i + 1] == PlannedTensor("model.layers.0.mlp.gate_proj.weight_scale", "BF16", scale)
        assert [n for n in names if not n.endswith("_scale")] == [t.name for t in TENSORS]
    assert plan_tensors(tensor_plan(SHAPE, "F16"), "fp8-dynamic")[2].dtype == "F8_E4M3"


def test_ignore_rules_expand_in_model_order() -> None:
    ignore = [r"re:.*layers\.1[01]\.mlp\..*", "model.layers.2.self_attn.o_proj"]
    plan = plan_variant(TENSORS, "fp8-dynamic", ignore, CONFIG)
    assert plan.ignored_modules == (
        "model.layers.2.self_attn.o_proj",
        "model.layers.10.mlp.gate_proj",
        "model.layers.10.mlp.up_proj",
        "model.layers.10.mlp.down_proj",
        "model.layers.11.mlp.gate_proj",
        "model.layers.11.mlp.up_proj",
        "model.layers.11.mlp.down_proj",
        "lm_head",
    )
    assert "model.layers.10.mlp.up_proj.weight" not in plan.targets
    assert "model.layers.1.mlp.up_proj.weight" in plan.targets  # re.match anchors at the start only
    # layers compare numerically; unknown leaf names fall back to alphabetical
    assert sorted(["model.layers.10.x", "model.layers.9.x", "lm_head", "model.layers.9.a"], key=module_order) == [
        "model.layers.9.a", "model.layers.9.x", "model.layers.10.x", "lm_head",
    ]
    assert module_order("model.layers.9.mlp.up_proj") < module_order("model.layers.10.self_attn.q_proj")


def test_tied_lm_head_is_still_ignored() -> None:
    shape = MistralShape(hidden=64, intermediate=128, layers=1, heads=2, kv_heads=1, vocab=32, tie_word_embeddings=True)
    plan = plan_variant(tensor_plan(shape), "fp8-dynamic", (), mistral_config(shape))
    assert plan.ignored_modules == ("lm_head",)


def test_fused_layers_must_share_a_scheme() -> None:
    with pytest.raises(QuantizeError, match="fused"):
        plan_variant(TENSORS, "fp8-dynamic", ["model.layers.0.self_attn.k_proj"], CONFIG)
    with pytest.raises(QuantizeError, match="gate_proj"):
        plan_variant(TENSORS, "fp8-dynamic", [r"re:.*\.up_proj$"], CONFIG)
    plan_variant(TENSORS, "fp8-dynamic", [r"re:.*layers\.0\.self_attn\.[qkv]_proj"], CONFIG)


def test_bad_ignore_patterns() -> None:
    with pytest.raises(QuantizeError, match="regular expression"):
        IgnoreRules.parse(["re:(unclosed"])
    with pytest.raises(QuantizeError, match="no decoder Linear weights"):
        plan_variant(TENSORS, "fp8-dynamic", ["re:.*"], CONFIG)


def test_config_block_matches_llmcompressor_keys() -> None:
    block = quantization_config("fp8-dynamic", ["lm_head"])
    assert block["version"] == COMPRESSED_TENSORS_VERSION == "0.19.0"
    assert block["config_groups"]["group_0"]["weights"]["strategy"] == "channel"
    assert block["config_groups"]["group_0"]["input_activations"]["strategy"] == "token"
    blk = quantization_config("fp8-block", ["lm_head"])["config_groups"]["group_0"]
    assert blk["weights"]["block_structure"] == [128, 128]
    assert blk["input_activations"]["group_size"] == 128
    merged = {"architectures": ["MistralForCausalLM"], "dtype": "bfloat16"}
    cfg = variant_config(merged, "fp8-block", ["lm_head"])
    assert cfg["quantization_config"]["ignore"] == ["lm_head"]
    assert "quantization_config" not in merged  # the source config is not touched
    assert plan_variant(TENSORS, "fp8-block", (), CONFIG).config(CONFIG) == variant_config(CONFIG, "fp8-block", ["lm_head"])


def test_unknown_scheme() -> None:
    with pytest.raises(QuantizeError, match=r"unknown quantization scheme 'int4'.*fp8-dynamic, fp8-block"):
        get_scheme("int4")
    assert get_scheme("FP8_BLOCK").name == "fp8-block"  # llm-compressor's preset names work too


@pytest.mark.parametrize(
    ("tensors", "config", "message"),
    [
        (TENSORS, {"quantization_config": {"quant_method": "fp8"}}, "already quantized .*fp8"),
        ([*TENSORS[:2], PlannedTensor("model.layers.0.self_attn.k_proj.weight", "F8_E4M3", (64, 192))], {}, "already FP8"),
        ([*TENSORS, PlannedTensor("model.layers.0.self_attn.q_proj.weight_scale", "BF16", (192, 1))], {}, "already quantized"),
        ([*TENSORS, PlannedTensor("model.layers.0.self_attn.q_proj.qweight", "I32", (24, 192))], {}, "int/FP8"),
        ([PlannedTensor("model.layers.0.mlp.up_proj.weight", "F64", (4, 4))], {}, "F64; FP8 quantization reads BF16"),
    ],
)
def test_refusals(tensors: list[PlannedTensor], config: dict[str, object], message: str) -> None:
    with pytest.raises(QuantizeError, match=message) as info:
        plan_variant(tensors, "fp8-dynamic", (), config, where="m")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, PublisherError) and info.value.exit_code == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("scheme", ["fp8-dynamic", "fp8-block"])
def test_non_finite_weights_name_the_tensor(bad: float, scheme: str) -> None:
    w = torch.randn(300, 200).mul(0.02).to(torch.bfloat16)
    w[257, 3] = bad
    name = "model.layers.4.mlp.down_proj.weight"
    with pytest.raises(QuantizeError, match=r"model\.layers\.4\.mlp\.down_proj\.weight has NaN or Inf"):
        quantize_tensor(name, w, scheme)


def test_zero_rows_get_eps_scale_and_zero_codes() -> None:
    w = torch.zeros(4, 8, dtype=torch.bfloat16)
    w[1] = -0.0
    w[2, 0] = 1.0
    codes, scale = quantize_weight(w, get_scheme("fp8-dynamic"))
    assert scale[0, 0].item() == scale[1, 0].item() == 2**-7
    assert bool((codes.view(torch.uint8)[:2] == 0).all())  # -0.0 is stored as +0 (0x00)
    assert codes[2, 0].float().item() == 448.0
    _codes16, scale16 = quantize_weight(w.to(torch.float16), get_scheme("fp8-dynamic"))
    assert scale16[0, 0].item() == 2**-10 and scale16.dtype == torch.float16  # eps of the model dtype


def test_dequantized_error_is_small() -> None:
    from publisher.quantize import dequantize

    gen = torch.Generator().manual_seed(3)
    w = (torch.randn(256, 384, generator=gen) * 0.02).to(torch.bfloat16)
    for name in ("fp8-dynamic", "fp8-block"):
        s = get_scheme(name)
        codes, scale = quantize_weight(w, s)
        back = dequantize(codes, scale, s, torch.float32)
        rel = float((back - w.float()).norm() / w.float().norm())
        assert 0.005 < rel < 0.04, (name, rel)
