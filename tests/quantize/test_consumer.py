"""transformers (+ compressed-tensors) loads what we write, on CPU, and computes nearly the bf16 logits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from publisher.quantize import dequantize, get_scheme, quantize_model
from tests.quantize.helpers import FIXTURES, load_tensors

transformers = pytest.importorskip("transformers")
pytest.importorskip("compressed_tensors")

SRC = FIXTURES / "tiny" / "input"
IDS = torch.randint(3, 128, (2, 32), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module", autouse=True)
def offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def reference_logits() -> torch.Tensor:
    model = transformers.AutoModelForCausalLM.from_pretrained(SRC, dtype=torch.bfloat16)
    with torch.no_grad():
        return model(IDS).logits.float()


@pytest.mark.parametrize("scheme", ["fp8-dynamic", "fp8-block"])
def test_transformers_default_load(tmp_path: Path, scheme: str, reference_logits: torch.Tensor) -> None:
    out = tmp_path / scheme
    quantize_model(SRC, out, scheme)
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.float8_e4m3fn  # really loaded as FP8
    with torch.no_grad():
        logits = model(IDS).logits.float()
    cos = torch.nn.functional.cosine_similarity(logits.flatten(), reference_logits.flatten(), dim=0).item()
    max_abs = (logits - reference_logits).abs().max().item()
    scale = reference_logits.abs().max().item()
    print(f"\n{scheme}: cos {cos:.5f}, max abs diff {max_abs:.4f} (max |logit| {scale:.3f})")
    assert cos > 0.995
    assert max_abs < 0.1 * scale


@pytest.mark.parametrize("scheme", ["fp8-dynamic", "fp8-block"])
def test_weight_only_dequant_is_exactly_ours(tmp_path: Path, scheme: str, reference_logits: torch.Tensor) -> None:
    """With dequantize=True the loaded weights are bitwise q * scale: scale layout and meaning agree."""
    out = tmp_path / scheme
    quantize_model(SRC, out, scheme)
    config = transformers.CompressedTensorsConfig(dequantize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(out, quantization_config=config)
    ours = load_tensors(out)
    s = get_scheme(scheme)
    checked = 0
    for name, param in model.named_parameters():
        if name + "_scale" in ours:
            expected = dequantize(ours[name], ours[name + "_scale"], s, torch.bfloat16)
            assert param.dtype == torch.bfloat16 and torch.equal(param.data, expected), name
            checked += 1
    assert checked == 14
    with torch.no_grad():
        logits = model(IDS).logits.float()
    cos = torch.nn.functional.cosine_similarity(logits.flatten(), reference_logits.flatten(), dim=0).item()
    print(f"\n{scheme} dequantize=True: cos {cos:.5f}, max abs diff {(logits - reference_logits).abs().max().item():.4f}")
    assert cos > 0.995
