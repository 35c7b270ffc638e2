"""Builds broken on purpose are each caught with one line, exit 2, and nothing is published;
thresholds of the recipe's checks: section close the gate with the number and the threshold."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from publisher.check.results import load_report
from publisher.standins import Recipe, generate_model, write_tokenizer
from tests.check.conftest import SHAPE, copy_model, edit_json, recipe_text, rewrite_tensors

Cli = Callable[..., Any]


def _solo(path: Path, extra: str = "") -> str:
    return recipe_text(f"[{{model: {path}, parameters: {{weight: 1.0}}}}]", extra=extra)


def _build(cli: Cli, tmp_path: Path, text: str, name: str = "out") -> tuple[Any, Path]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(text)
    out = tmp_path / name
    return cli("build", recipe, "--out", out, "--quiet"), out


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _refused(cli: Cli, out: Path) -> None:
    """publish refuses before touching any server (no endpoint is reachable here)."""
    r = cli("publish", out, "--endpoint", "http://127.0.0.1:9")
    assert r.code == 2, r.err
    assert len(r.err.strip().splitlines()) == 1 and "checks failed, not publishing" in r.err


def test_a_good_build_passes_and_publish_gets_past_the_gate(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "quantize: [{scheme: fp8-dynamic}]\n"))
    assert r.code == 0, r.err
    # --quiet: the final lines only (built ..., checks passed ...), not the measured table
    assert r.out.startswith("built ") and "checks passed" in r.out and "measured over" not in r.out, r.out
    assert r.out.count("\n") <= 4, r.out  # two lines (rich wraps them at 80 columns here)
    checked = cli("check", out)
    assert checked.code == 0
    assert "measured over" in checked.out  # check itself shows the table
    # the gate is open: publish goes on to the network (and fails there, with exit 1)
    p = cli("publish", out, "--endpoint", "http://127.0.0.1:9")
    assert "checks failed" not in p.err and "not been checked" not in p.err


def test_embedding_rows_fewer_than_tokenizer_ids(tmp_path: Path, cli: Cli) -> None:
    from dataclasses import replace

    parent = generate_model(tmp_path / "short", replace(SHAPE, vocab=100), recipe=Recipe(seed=5), tokenizer=False)
    write_tokenizer(parent, 128)  # the tokenizer of a 128-row model beside 100-row embeddings
    r, out = _build(cli, tmp_path, _solo(parent))
    assert r.code == 2
    errors = _errors(r.err)
    assert len(errors) == 1
    assert "tokenizer.json: the tokenizer has 128 ids (0–127) but the embedding has only 100 rows" in errors[0]
    report = load_report(out)
    assert report is not None and not report.passed and not report.measured
    _refused(cli, out)


def test_a_layer_that_produces_inf(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    parent = copy_model(chars_models["a"], tmp_path / "hot")

    def overflow(t: dict[str, torch.Tensor]) -> None:  # finite weights whose products overflow
        for proj in ("gate_proj", "up_proj", "down_proj"):
            name = f"model.layers.2.mlp.{proj}.weight"
            t[name] = torch.full_like(t[name], 3e38)

    rewrite_tensors(parent, overflow)
    r, out = _build(cli, tmp_path, _solo(parent))
    assert r.code == 2
    errors = _errors(r.err)
    assert len(errors) == 1 and "model.layers.2 produces" in errors[0] and "evaluation text" in errors[0]
    _refused(cli, out)


def test_a_chat_template_that_does_not_render(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    text = _solo(chars_models["a"]).replace("  dtype: bfloat16\n", "  dtype: bfloat16\n  chat_template: \"{{ messages[0]['content'] | nosuchfilter }}\"\n")
    r, out = _build(cli, tmp_path, text)
    assert r.code == 2, r.out + r.err
    errors = _errors(r.err)
    assert len(errors) == 1
    assert "tokenizer_config.json: the chat template does not render a two-turn conversation" in errors[0]
    _refused(cli, out)


def test_an_fp8_variant_with_a_wrong_scale(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "quantize: [{scheme: fp8-dynamic}]\n"))
    assert r.code == 0, r.err

    def wrong(t: dict[str, torch.Tensor]) -> None:
        name = "model.layers.1.self_attn.v_proj.weight_scale"
        t[name] = t[name] * 4

    rewrite_tensors(out / "variants" / "FP8", wrong)
    c = cli("check", out)
    assert c.code == 2
    errors = _errors(c.err)
    assert any("model.layers.1.self_attn.v_proj.weight dequantizes" in e and "above the threshold 0.1" in e for e in errors), errors
    _refused(cli, out)


def test_an_fp8_scale_of_the_wrong_shape(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "quantize: [{scheme: fp8-dynamic}]\n"))
    assert r.code == 0, r.err

    def per_tensor(t: dict[str, torch.Tensor]) -> None:
        name = "model.layers.0.mlp.up_proj.weight_scale"
        t[name] = t[name].amax().reshape(1)

    rewrite_tensors(out / "variants" / "FP8", per_tensor)
    c = cli("check", out, "--no-measure")
    assert c.code == 2
    errors = _errors(c.err)
    assert len(errors) == 1
    assert "variants/FP8/config.json: channel scales need model.layers.0.mlp.up_proj.weight_scale of shape [32, 1], found [1]" in errors[0]


def test_generation_config_ids_outside_the_vocabulary(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "checks: {measure: false}\n"))
    assert r.code == 0
    edit_json(out / "generation_config.json", lambda g: g.update(eos_token_id=[2, 500]))
    c = cli("check", out)
    assert c.code == 2
    assert _errors(c.err) == [f"error: {out}/generation_config.json: eos_token_id 500 is not a token id below vocab_size 128"]


def test_a_scrambled_layer_fails_the_gate(tmp_path: Path, bigram_models: dict[str, Path], cli: Cli) -> None:
    """Parents that predict the text (bigram stand-ins); one layer of one parent replaced by
    noise 30× too large: the merge still runs, but its perplexity is far above its parents'."""
    a, b = bigram_models["a"], bigram_models["b"]
    scrambled = copy_model(a, tmp_path / "scrambled")

    def scramble(t: dict[str, torch.Tensor]) -> None:
        gen = torch.Generator().manual_seed(0)
        for name in [n for n in t if n.startswith("model.layers.1.") and n.endswith("proj.weight")]:
            t[name] = (torch.randn(t[name].shape, generator=gen) * 0.6).to(t[name].dtype)

    rewrite_tensors(scrambled, scramble)
    good = f"[{{model: {a}}}, {{model: {b}}}]"
    bad = f"[{{model: {scrambled}}}, {{model: {b}}}]"
    extra = "checks: {with_parents: true, tokens: 256}\n"
    ok, _ok_out = _build(cli, tmp_path, recipe_text(good, method="slerp", base=str(a), params="{t: 0.3}", extra=extra), "good")
    assert ok.code == 0, ok.err
    r, out = _build(cli, tmp_path, recipe_text(bad, method="slerp", base=str(scrambled), params="{t: 0.3}", extra=extra), "bad")
    assert r.code == 2
    errors = _errors(r.err)
    assert len(errors) == 1 and "merged perplexity is" in errors[0] and "above the threshold" in errors[0], errors
    _refused(cli, out)


def test_a_threshold_gives_the_number_and_the_threshold(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "checks: {max_perplexity: 1.5, tokens: 64}\n"))
    assert r.code == 2
    report = load_report(out)
    assert report is not None and report.measurement("merged") is not None
    ppl = report.measurement("merged").perplexity  # type: ignore[union-attr]
    assert _errors(r.err) == [
        f"error: {out}/recipe.yaml: checks.max_perplexity: merged perplexity is {ppl:.4g}, above the threshold 1.5"
    ]
    _refused(cli, out)


def test_checks_section_is_validated_with_the_line(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(_solo(chars_models["a"], "checks:\n  min_top1_agreemnt: 0.97\n"))
    r = cli("plan", recipe)
    assert r.code == 2
    assert "r.yaml:8" in r.err and "min_top1_agreemnt" in r.err and "min_top1_agreement" in r.err


def test_a_stale_report_is_refused(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], "checks: {measure: false}\n"))
    assert r.code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["seed"] = 7
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    p = cli("publish", out, "--endpoint", "http://127.0.0.1:9")
    assert p.code == 2 and "checks.json is from another build" in p.err
    (out / "checks.json").unlink()
    p = cli("publish", out, "--endpoint", "http://127.0.0.1:9")
    assert p.code == 2 and "has not been checked" in p.err


def test_a_top1_agreement_threshold_closes_the_gate(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    """Off by default (a random stand-in's correct FP8 copy agrees on 89–97 % of tokens); a recipe sets it."""
    extra = "quantize: [{scheme: fp8-dynamic}]\n"
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], extra + "checks: {tokens: 64}\n"))
    assert r.code == 0, r.err  # the default gate: KL and perplexity against the merged model
    fp8 = load_report(out).measurement("FP8")  # type: ignore[union-attr]
    assert fp8 is not None and fp8.top1_agreement is not None and fp8.top1_agreement < 0.999
    r, out = _build(cli, tmp_path, _solo(chars_models["a"], extra + "checks: {tokens: 64, min_top1_agreement: 0.999}\n"), "strict")
    assert r.code == 2
    assert _errors(r.err) == [
        f"error: {out}/recipe.yaml: checks.min_top1_agreement: FP8 top-1 agreement with the merged model is "
        f"{fp8.top1_agreement:.4f}, below the threshold 0.999"
    ]
    _refused(cli, out)
