"""Rendering: injection safety, templates and their errors, evaluations, validation, the command."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cardkit import HUB, RECIPES
from huggingface_hub import ModelCard

from publisher.card.fetchers import FolderFetcher
from publisher.card.identity import unstamp
from publisher.card.render import render_cards
from publisher.card.text import md_code, md_fenced, md_inline
from publisher.card.validate import validate_card_text
from publisher.cli import main
from publisher.errors import CardError


def with_card(tmp_path: Path, extra: dict[str, object], name: str = "recipe.yaml") -> Path:
    """The ING seed recipe with its card section extended."""
    data = yaml.safe_load((RECIPES / "ing_2003m3_slerp.yaml").read_text())
    data["card"].update(extra)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def render(build: Path, **kw: object) -> list[str]:
    return [c.text for c in render_cards(build, fetcher=FolderFetcher(HUB), **kw).cards]  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- injection


EVIL = "---\nlicense: mit\n---\n# Pwned\n<script>alert(1)</script> [click](javascript:alert(1)) | a | b |\n```\n1. item\n- bullet"


def test_text_fields_cannot_break_out(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    recipe = with_card(tmp_path, {
        "summary": EVIL,
        "description": "para one\n\n" + EVIL,
        "use_cases": [EVIL, "=====", "2) numbered"],
        "limitations": ["<img src=x onerror=alert(1)>"],
        "tags": ["ok-tag"],
        "comparisons": [{"model": "a|b<i>", "results": {"x": 1.0}, "note": EVIL}],
        "evaluations": [{"task": "x</td>", "metric": "acc|", "value": 0.5}],
    })
    for text in render(make_build(recipe)):
        card = ModelCard(text)
        assert card.data.license == "apache-2.0"  # the front matter is ours alone
        assert text.count("\n---\n") == 1 and text.startswith("---\n")
        assert validate_card_text(text, "x").data.to_dict() == card.data.to_dict()
        fence = re.search(r"^(`{3,})yaml$", card.text, re.M)
        assert fence is not None
        # the recipe is shown verbatim inside a fence no content can close
        block, _, after = card.text[fence.end():].partition("\n" + fence.group(1) + "\n")
        assert "```" in block and len(fence.group(1)) > 3
        body = card.text[: fence.start()] + after  # everything outside the (inert) code block
        for raw in ("<script>", "<img", "</td>", "<i>"):
            assert raw not in body
        assert "&lt;script&gt;" in body
        assert not re.search(r"^\s*#+ Pwned", body, re.M)  # mid-line '#' is not a heading
        assert not re.search(r"^\s*(---|license: mit)", body, re.M)
        assert "[click](javascript" not in body
        assert not re.search(r"^\s*(#|1\.|- bullet|=====|2\))", "\n".join(
            line for line in body.splitlines() if "Pwned" in line or "=====" in line or "numbered" in line
        ), re.M)
        # tables keep their shape: every row of the comparison table has the same number of cells
        rows = [line for line in body.splitlines() if line.startswith("| ") and "0.5" in line and "x" in line]
        assert rows and all(line.count(" | ") == rows[0].count(" | ") for line in rows)


def test_escaping_helpers() -> None:
    assert md_inline("a\n\n# b") == "a # b"
    assert md_inline("# b") == "\\# b"
    assert md_inline("1. x") == "1\\. x"
    assert md_inline("7.24B") == "7.24B"
    assert md_inline("---") == "\\---"
    assert md_inline("a_b*c`d|e") == "a\\_b\\*c\\`d\\|e"
    assert md_inline("<b>&") == "&lt;b&gt;&amp;"
    assert md_code("a`b") == "``a`b``"
    assert md_fenced("x\n````\ny", "yaml").startswith("`````yaml\n")


# ----------------------------------------------------------------------------- templates


def test_user_template_extends_the_default(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    tpl = tmp_path / "mine.md.j2"
    tpl.write_text('{% extends "card/default.md.j2" %}\n{% block uses %}## Intended uses\n\nInternal use: {{ model.name }}.\n{% endblock %}\n')
    texts = render(make_build("ing_2003m3_slerp.yaml"), template=tpl)
    assert "Internal use: MatthieuJ/ING\\_2003M3\\_SLERP." in texts[0]
    uses = texts[0].split("## Intended uses", 1)[1].split("## How to use", 1)[0]
    assert "## Lineage" in texts[0] and "General-purpose" not in uses


def test_recipe_names_its_template(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl/short.md.j2").write_text("# {{ model.name }}\n\n{{ strip.size }} · {{ strip.quant }}\n")
    build = make_build(with_card(tmp_path, {"template": "tpl/short.md.j2"}))
    merged, fp8 = render(build, recipe_dir=tmp_path)
    assert unstamp(merged).endswith("# MatthieuJ/ING\\_2003M3\\_SLERP\n\n7B · BF16\n")  # then its identity mark
    assert unstamp(fp8).endswith("7B · FP8\n")
    with pytest.raises(CardError, match=r"template .*short.md.j2 not found"):
        render(build)  # relative to the build dir: not there


@pytest.mark.parametrize(
    ("template", "pattern"),
    [
        ("line one\n{% if %}\n", r"bad.md.j2:2: template syntax error"),
        ("ok\n\n{{ model.no_such_field }}\n", r"bad.md.j2:3: template uses an undefined variable"),
        ("{{ nothing_here }}", r"bad.md.j2:1: template uses an undefined variable \('nothing_here' is undefined\)"),
        ('{% extends "card/missing.md.j2" %}', r"template not found: card/missing.md.j2"),
    ],
)
def test_template_errors_are_one_line_with_location(tmp_path: Path, make_build: Callable[..., Path], template: str, pattern: str) -> None:
    bad = tmp_path / "bad.md.j2"
    bad.write_text(template)
    build = make_build("ing_2003m3_slerp.yaml")
    with pytest.raises(CardError, match=pattern) as e:
        render(build, template=bad)
    assert "\n" not in str(e.value)
    assert main(["card", str(build), "--cards", str(HUB), "--template", str(bad)]) == 2


# ----------------------------------------------------------------------------- evaluations


LM_EVAL = {
    "results": {
        "arc_challenge": {"alias": "arc_challenge", "acc,none": 0.6015, "acc_stderr,none": 0.0143, "acc_norm,none": 0.6399, "acc_norm_stderr,none": 0.014},
        "mmlu": {"alias": "mmlu", "acc,none": 0.6262, "acc_stderr,none": 0.0038},
        "mmlu_anatomy": {"alias": " - anatomy", "acc,none": 0.6},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.41, "exact_match,flexible-extract": 0.43},
    },
    "group_subtasks": {"mmlu": ["mmlu_anatomy"], "arc_challenge": [], "gsm8k": []},
    "configs": {
        "arc_challenge": {"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge", "test_split": "test", "num_fewshot": 25},
        "gsm8k": {"dataset_path": "gsm8k", "dataset_name": "main", "test_split": "test"},
    },
    "n-shot": {"arc_challenge": 25, "gsm8k": 5, "mmlu": 5},
}


def test_lm_eval_results_become_table_and_model_index(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals/results.json").write_text(json.dumps({**LM_EVAL, "date": 1703116800.0, "lm_eval_version": "0.4.2"}))
    source = {"name": "our run", "url": "https://example.org/run/1"}
    build = make_build(with_card(tmp_path, {"evaluations": "evals/results.json", "evaluation_source": source}))
    merged = render(build, recipe_dir=tmp_path)[0]
    results = ModelCard(merged).data.eval_results
    got = {(r.dataset_name, r.metric_type): (r.metric_value, r.dataset_type, r.dataset_args) for r in results}
    # a known benchmark is named as such and points at its Hub dataset
    assert got[("AI2 Reasoning Challenge (ARC)", "acc_norm")] == (0.6399, "allenai/ai2_arc", {"num_few_shot": 25})
    assert got[("GSM8K", "exact_match (strict-match)")][:2] == (0.41, "gsm8k")
    assert ("anatomy", "acc") not in got  # a subtask of a reported group
    assert {(r.source_name, r.source_url) for r in results} == {("our run", "https://example.org/run/1")}
    assert "| AI2 Reasoning Challenge (ARC) | acc\\_norm | 25-shot | 0.6399 |" in merged
    assert "[our run](https://example.org/run/1) (lm-evaluation-harness 0.4.2, 2023-12-21)" in merged
    # the Hub's .eval_results/ files beside the card, one per task, parsed by huggingface_hub
    from huggingface_hub import parse_eval_result_entries

    files = sorted(p.name for p in (build / ".eval_results").iterdir())
    assert files == ["arc_challenge.yaml", "gsm8k.yaml", "mmlu.yaml"]
    arc = parse_eval_result_entries(yaml.safe_load((build / ".eval_results/arc_challenge.yaml").read_text()))
    assert [(e.dataset_id, e.task_id, e.value, e.date, e.source_url) for e in arc] == [
        ("allenai/ai2_arc", "arc_challenge", 0.6015, "2023-12-21", "https://example.org/run/1"),
        ("allenai/ai2_arc", "arc_challenge", 0.6399, "2023-12-21", "https://example.org/run/1"),
    ]
    assert not (build / "variants/FP8/.eval_results").exists()  # measured on the merged model only
    # evaluations dropped from the recipe: the files go too
    recipe = build / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("evaluations: evals/results.json", "tags: [x]"))
    render(build, recipe_dir=tmp_path)
    assert not (build / ".eval_results").exists()


def test_aggregates_and_unknown_tasks_stay_out_of_the_model_index(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    evaluations = [
        {"task": "Average", "metric": "score", "value": 70.0},
        {"task": "HellaSwag", "metric": "acc_norm", "value": 85.0,
         "source": {"name": "Open LLM Leaderboard", "url": "https://huggingface.co/spaces/open-llm-leaderboard-old/open_llm_leaderboard"}},
        {"task": "our-private-task", "metric": "acc", "value": 0.5},
    ]
    merged = render(make_build(with_card(tmp_path, {"evaluations": evaluations})), recipe_dir=tmp_path)[0]
    results = ModelCard(merged).data.eval_results
    # HellaSwag: the leaderboard's dataset, split and fixed 10-shot setting; Average and the
    # private task are in the table only
    assert [(r.dataset_type, r.dataset_split, r.dataset_args, r.source_name) for r in results] == [
        ("Rowan/hellaswag", "validation", {"num_few_shot": 10}, "Open LLM Leaderboard"),
    ]
    assert "| Average | score | — | 70 |" in merged
    assert "| our-private-task | acc | — | 0.5 |" in merged
    assert "Average is an aggregate of other tasks, not a dataset" in merged


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (None, r"evaluation file evals/r.json not found"),
        ("{not json", r"r.json:1: evaluation file is not valid JSON"),
        ('{"accuracy": 0.5}', r"no 'results' object"),
        ('{"results": {"a": {"acc": "n/a"}}}', r"no numeric metrics"),
    ],
)
def test_bad_evaluation_files(tmp_path: Path, make_build: Callable[..., Path], content: str | None, pattern: str) -> None:
    (tmp_path / "evals").mkdir()
    if content is not None:
        (tmp_path / "evals/r.json").write_text(content)
    build = make_build(with_card(tmp_path, {"evaluations": "evals/r.json"}))
    with pytest.raises(CardError, match=pattern):
        render(build, recipe_dir=tmp_path)


# ----------------------------------------------------------------------------- validation and writing


@pytest.mark.parametrize(
    ("front", "pattern"),
    [
        ("license: apache2", "not a license id"),
        ("license: mit\nbase_model: not a repo", "base_model 'not a repo' is not a valid repo id"),
        ("license: mit\nbase_model: [a/b]\nbase_model_relation: merged", "base_model_relation 'merged'"),
        ("license: mit\nlanguage: English", "language 'English'"),
        ("license: mit\nmodel-index: [{name: x, results: [{metrics: 3}]}]", "rejected by huggingface_hub"),
        ("- a list", "rejected by huggingface_hub"),
    ],
)
def test_offline_validation(front: str, pattern: str) -> None:
    with pytest.raises(CardError, match=pattern):
        validate_card_text(f"---\n{front}\n---\nbody\n", "README.md")


def test_nothing_is_written_unless_every_card_renders(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build("ing_2003m3_slerp.yaml")
    (build / "README.md").write_text("old merged card\n")
    cfg = json.loads((build / "variants/FP8/config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "compressed-tensors"}  # the second card cannot render
    (build / "variants/FP8/config.json").write_text(json.dumps(cfg))
    with pytest.raises(CardError, match="no config_groups"):
        render(build)
    assert (build / "README.md").read_text() == "old merged card\n"
    assert not list(build.rglob("*.partial"))


def test_cli_writes_every_variant(make_build: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    build = make_build("mistral_instruct_slerp.yaml")
    assert main(["card", str(build), "--cards", str(HUB), "--published", "2024-01-10"]) == 0
    err = capsys.readouterr().err
    assert "README.md: merged · 7B · BF16 · ctx 4k · apache-2.0 · Mistral" in err
    assert "FP8 · 7B · FP8 · ctx 4k" in err
    assert "Jan 10, 2024" in (build / "variants/FP8/README.md").read_text()
    assert main(["card", str(build), "--published", "10/01/2024"]) == 2
    assert main(["card", str(build.parent / "nope")]) == 2
