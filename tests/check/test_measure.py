"""The measured pass: transformers' own modeling code streamed layer by layer gives the numbers
transformers' full-model forward gives; relative facts on stand-ins (self-merge, SLERP t=0)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from publisher.build import BuildOptions, build
from publisher.check.measure import Target, measure
from publisher.check.results import load_report
from publisher.check.run import CheckOptions, check_build
from publisher.check.stream import StreamedModel, WeightSource, build_meta_model, units_of
from tests.check.conftest import recipe_text


def _ids(n: int = 96) -> torch.Tensor:
    return torch.randint(0, 128, (n,), generator=torch.Generator().manual_seed(3))


def _build(tmp_path: Path, text: str, name: str = "out", **kw: object) -> Path:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(text)
    out = tmp_path / name
    build(recipe, out, BuildOptions(quiet=True, render_cards=False, **kw))  # type: ignore[arg-type]
    return out


def test_streaming_equals_transformers_full_forward(chars_models: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    folder = chars_models["a"]
    ids = _ids()
    streamed = StreamedModel(folder, WeightSource.open(folder, torch.float32, "cpu"))
    try:
        ours = streamed.logits(ids)
    finally:
        streamed.close()
    full = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.inference_mode():
        ref = full(input_ids=ids[None]).logits[0]
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    # and every parameter went back to meta: nothing stays resident after the pass
    assert all(p.device.type == "meta" for p in streamed.model.parameters())


def test_units_are_layers_embedding_norm_and_head(chars_models: dict[str, Path]) -> None:
    model = build_meta_model(chars_models["a"], torch.float32)
    names = [n for n, _ in units_of(model)]
    assert names == ["model.embed_tokens", *[f"model.layers.{i}" for i in range(4)], "model.norm", "lm_head"]


def test_fp8_equals_transformers_compressed_tensors_forward(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    """transformers + compressed-tensors decompress FP8 weights and fake-quantize each Linear's
    input per token: the same arithmetic our simulation does (we in float32, they in bf16)."""
    from transformers import AutoModelForCausalLM

    out = _build(
        tmp_path, recipe_text(f"[{{model: {chars_models['a']}, parameters: {{weight: 1.0}}}}]", extra="quantize: [{scheme: fp8-dynamic}]\n"),
        checks=False,
    )
    variant = out / "variants" / "FP8"
    ids = _ids()
    streamed = StreamedModel(variant, WeightSource.open(variant, torch.float32, "cpu"))
    try:
        ours = streamed.logits(ids)
    finally:
        streamed.close()
    full = AutoModelForCausalLM.from_pretrained(str(variant), dtype=torch.float32).eval()
    with torch.inference_mode():
        ref = full(input_ids=ids[None]).logits[0].float()
    scale = ref.abs().max()
    assert float((ours - ref).abs().max()) <= 2e-3 * float(scale)
    # not the merged model's numbers: the FP8 rounding is really simulated
    merged = StreamedModel(out, WeightSource.open(out, torch.float32, "cpu"))
    try:
        bf16 = merged.logits(ids)
    finally:
        merged.close()
    assert float((ours - bf16).abs().max()) > 10 * float((ours - ref).abs().max())


def test_perplexity_is_transformers_loss(chars_models: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from publisher.check.evaltext import evaluation_tokens

    folder = chars_models["b"]
    result = measure([Target("merged", folder, ".")], tokens=64)
    m = result.measurements[0]
    assert result.text is not None and result.text.tokens == 64 and result.text.unknown_tokens == 0
    ids = evaluation_tokens(AutoTokenizer.from_pretrained(str(folder)), 64).ids
    full = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    with torch.inference_mode():
        loss = float(full(input_ids=ids[None], labels=ids[None]).loss)
    assert m.mean_nll == pytest.approx(loss, rel=1e-5)
    assert m.perplexity == pytest.approx(math.exp(loss), rel=1e-5)


def test_self_merge_measures_as_the_model(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    a = chars_models["a"]
    out = _build(tmp_path, recipe_text(f"[{{model: {a}, parameters: {{weight: 0.5}}}}, {{model: {a}, parameters: {{weight: 0.5}}}}]"))
    report = check_build(out, options=CheckOptions(with_parents=True, tokens=128))
    merged, parent = report.measurement("merged"), report.measurement(f"parent {a.name}")
    assert merged is not None and parent is not None
    assert merged.perplexity == parent.perplexity
    assert report.passed


def test_slerp_at_zero_measures_as_parent_a(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    a, b = chars_models["a"], chars_models["b"]
    out = _build(
        tmp_path, recipe_text(f"[{{model: {a}}}, {{model: {b}}}]", method="slerp", base=str(a), params="{t: 0.0}"),
    )
    report = check_build(out, options=CheckOptions(with_parents=True, tokens=128))
    merged = report.measurement("merged")
    pa, pb = report.measurement(f"parent {a.name}"), report.measurement(f"parent {b.name}")
    assert merged is not None and pa is not None and pb is not None
    assert merged.perplexity == pa.perplexity
    assert merged.perplexity != pb.perplexity


def test_fp8_variants_agree_with_merged_and_are_recorded(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    a, b = chars_models["a"], chars_models["b"]
    out = _build(
        tmp_path,
        recipe_text(f"[{{model: {a}}}, {{model: {b}}}]", method="slerp", base=str(a), params="{t: 0.5}",
                    extra="quantize: [{scheme: fp8-dynamic}, {scheme: fp8-block}]\nchecks: {tokens: 128}\n"),
    )
    report = load_report(out)
    assert report is not None and report.passed and report.measured
    assert report.text is not None and report.text.tokens == 128
    fp8, block = report.measurement("FP8"), report.measurement("FP8-BLOCK")
    assert fp8 is not None and block is not None
    assert (fp8.scheme, block.scheme) == ("fp8-dynamic", "fp8-block")
    for m in (fp8, block):
        assert m.top1_agreement is not None and 0.5 < m.top1_agreement <= 1.0
        assert m.mean_kl is not None and 0 <= m.mean_kl < 0.05
        assert m.fp8_weight_error is not None and m.fp8_weight_error < 0.1
    data = json.loads((out / "checks.json").read_text())
    assert data["manifest_sha256"] and data["thresholds"]["max_mean_kl"] == 0.1


def test_measure_false_skips_the_forward_pass(tmp_path: Path, chars_models: dict[str, Path]) -> None:
    out = _build(tmp_path, recipe_text(f"[{{model: {chars_models['a']}, parameters: {{weight: 1.0}}}}]", extra="checks: {measure: false}\n"))
    report = load_report(out)
    assert report is not None and report.passed and not report.measured and report.measurements == []


def test_device_cuda_runs_there_or_is_one_line_exit_1(tmp_path: Path, chars_models: dict[str, Path], cli) -> None:  # type: ignore[no-untyped-def]
    out = _build(tmp_path, recipe_text(f"[{{model: {chars_models['a']}, parameters: {{weight: 1.0}}}}]", extra="checks: {tokens: 64}\n"))
    cpu = load_report(out)
    r = cli("check", out, "--device", "cuda")
    if torch.cuda.is_available():  # a GPU machine: the same numbers within float tolerance
        assert r.code == 0, r.err
        gpu = load_report(out)
        assert cpu is not None and gpu is not None and gpu.device == "cuda"
        assert gpu.measurements[0].perplexity == pytest.approx(cpu.measurements[0].perplexity, rel=1e-4)
        return
    assert r.code == 1
    assert r.err.count("\n") == 1 and "no CUDA device" in r.err and "Traceback" not in r.err


def test_build_device_cuda_without_a_gpu_fails_before_merging(tmp_path: Path, chars_models: dict[str, Path], cli) -> None:  # type: ignore[no-untyped-def]
    if torch.cuda.is_available():
        pytest.skip("a GPU machine: --device cuda runs there (the test above compares its numbers)")
    recipe = tmp_path / "cuda.yaml"
    recipe.write_text(recipe_text(f"[{{model: {chars_models['a']}, parameters: {{weight: 1.0}}}}]",
                                  extra="checks: {device: cuda}\n"))
    for args in ((), ("--device", "cuda")):
        r = cli("build", recipe, "--out", tmp_path / "out", "--quiet", *args)
        assert r.code == 1, r.err
        assert r.err.count("\n") == 1 and "no CUDA device" in r.err and "Traceback" not in r.err
        assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()  # nothing merged
    assert cli("build", recipe, "--out", tmp_path / "out", "--quiet", "--no-measure").code == 0
