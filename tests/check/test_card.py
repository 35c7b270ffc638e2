"""The card states what was measured (its own section and model-index entries, apart from the
recipe's declared evaluations); the FP8 card states recovery; the catalog shows it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from publisher.check.results import load_report
from tests.check.conftest import recipe_text

Cli = Callable[..., Any]


def _front(text: str) -> dict[str, Any]:
    return yaml.safe_load(text.split("---\n")[1])


def test_cards_state_the_measurement_apart_from_declared_evaluations(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    a, b = chars_models["a"], chars_models["b"]
    text = recipe_text(
        f"[{{model: {a}}}, {{model: {b}}}]", method="slerp", base=str(a), params="{t: 0.4}",
        extra="quantize: [{scheme: fp8-dynamic}]\nchecks: {tokens: 96}\n"
        "card:\n  license: apache-2.0\n  evaluations: [{task: arc_challenge, metric: acc_norm, value: 0.61}]\n",
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    out = tmp_path / "out"
    r = cli("build", recipe, "--out", out, "--quiet")
    assert r.code == 0, r.err
    report = load_report(out)
    assert report is not None and report.text is not None
    merged, fp8 = report.measurement("merged"), report.measurement("FP8")
    assert merged is not None and fp8 is not None and fp8.recovery is not None and fp8.top1_agreement is not None

    card = (out / "README.md").read_text()
    section = card[card.index("## Measured") : card.index("\n## ", card.index("## Measured") + 3)]
    assert f"first {report.text.tokens} tokens of pydoc\\_data.topics" in section
    assert report.text.sha256 in section and report.tool in section and report.checked.date().isoformat() in section
    assert f"| merged model | {merged.perplexity:.4g} |" in section
    assert "arc_challenge" not in section  # declared results stay in their own section
    results = _front(card)["model-index"][0]["results"]
    declared = [x for x in results if x["dataset"]["type"] != "pydoc_data-topics"]
    measured = [x for x in results if x["dataset"]["type"] == "pydoc_data-topics"]
    assert len(declared) == 1 and "ARC" in declared[0]["dataset"]["name"]  # the recipe's arc_challenge
    assert measured[0]["dataset"]["revision"] == report.text.sha256
    assert measured[0]["metrics"][0]["type"] == "perplexity"
    assert f"measured by {report.tool} check on" in measured[0]["metrics"][0]["name"]

    fp8_card = (out / "variants" / "FP8" / "README.md").read_text()
    assert f"**Recovery against the merged model: {fp8.recovery:.2%}**" in fp8_card
    fp8_metrics = {m["type"]: m["value"] for m in _front(fp8_card)["model-index"][0]["results"][0]["metrics"]}
    assert fp8_metrics == {
        "perplexity": round(fp8.perplexity, 4), "top1_agreement": round(fp8.top1_agreement, 4), "recovery": round(fp8.recovery, 4)
    }

    site = tmp_path / "site"
    c = cli("catalog", "--builds", out, "--out", site)
    assert c.code == 0, c.err
    entries = {e["repo_id"]: e for e in json.loads((site / "catalog.json").read_text())["models"]}
    assert entries["acme/gate-test"]["measured"]["perplexity"] == round(merged.perplexity, 4)
    assert entries["acme/gate-test-FP8"]["measured"]["recovery"] == round(fp8.recovery, 4)
    page = (site / "models" / "acme--gate-test-FP8.html").read_text()
    assert "<dt>Measured</dt>" in page and f"recovery {fp8.recovery * 100:.2f}%" in page


def test_no_measured_section_without_a_measurement(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text(f"[{{model: {chars_models['a']}, parameters: {{weight: 1.0}}}}]", extra="checks: {measure: false}\n"))
    out = tmp_path / "out"
    assert cli("build", recipe, "--out", out, "--quiet").code == 0
    card = (out / "README.md").read_text()
    assert "## Measured" not in card and "pydoc_data-topics" not in card
