"""What the card says about the checks: the facts of checks.json for one variant.

The card's "Measured" section and its model-index entries come from here, labelled as
measured by this tool on the pydoc topics text (tokens, sha256, date, tool version), apart
from the evaluations a recipe declares. An FP8 variant's card states its recovery against
its merged model.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

from publisher.check.results import CheckReport, Measurement, load_report

DATASET_TYPE = "pydoc_data-topics"


def _row(m: Measurement) -> dict[str, Any]:
    return {
        "variant": m.variant,
        "label": m.variant.removeprefix("parent "),
        "is_parent": m.variant.startswith("parent "),
        "perplexity": _num(m.perplexity),
        "top1": None if m.top1_agreement is None else f"{m.top1_agreement:.2%}",
        "kl": None if m.mean_kl is None else f"{m.mean_kl:.3g}",
        "recovery": None if m.recovery is None else f"{m.recovery:.2%}",
        "scheme": m.scheme,
    }


def _num(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def _day(report: CheckReport, measured_on: date | None) -> str:
    return (measured_on or report.checked.date()).isoformat()


def measured_context(build_dir: Path, variant: str, measured_on: date | None = None) -> dict[str, Any] | None:
    """The template's ``measured`` variable; None when the build has no measurement.

    ``measured_on`` replaces the day checks.json says it measured: the card's identity is
    rendered with a fixed day, so measuring the same numbers again another day changes nothing.
    """
    report = load_report(build_dir)
    if report is None or not report.measured or report.text is None:
        return None
    this = report.measurement(variant)
    merged = report.measurement("merged")
    if this is None or merged is None:
        return None
    return {
        "tool": report.tool,
        "date": _day(report, measured_on),
        "device": report.device,
        "passed": report.passed,
        "text": report.text,
        "this": _row(this),
        "merged": _row(merged),
        "rows": [_row(m) for m in report.measurements if m.variant in ("merged", variant) or m.variant.startswith("parent ")],
        "variants": [_row(m) for m in report.measurements if m.top1_agreement is not None],
        "is_variant": variant != "merged",
    }


def unmeasured_reason(build_dir: Path) -> str | None:
    """Why a build that passed its checks was not measured (checks.json's note), for the card."""
    report = load_report(build_dir)
    if report is None or report.measured or not report.note:
        return None
    return report.note.removeprefix("not measured: ")


def measured_eval_results(build_dir: Path, variant: str, measured_on: date | None = None) -> list[Any]:
    """model-index entries for this variant, each naming the tool, date, text and its sha256."""
    from huggingface_hub import EvalResult

    report: CheckReport | None = load_report(build_dir)
    if report is None or not report.measured or report.text is None:
        return []
    m = report.measurement(variant)
    if m is None or not math.isfinite(m.perplexity):
        return []
    t = report.text
    common: dict[str, Any] = {
        "task_type": "text-generation",
        "dataset_type": DATASET_TYPE,
        "dataset_name": f"{t.source}, first {t.tokens} tokens",
        "dataset_revision": t.sha256,
    }
    by = f"measured by {report.tool} check on {_day(report, measured_on)}"
    out = [EvalResult(metric_type="perplexity", metric_name=f"Perplexity ({by})", metric_value=round(m.perplexity, 4), **common)]
    if m.top1_agreement is not None:
        out.append(EvalResult(metric_type="top1_agreement", metric_name=f"Top-1 agreement with the merged model ({by})",
                              metric_value=round(m.top1_agreement, 4), **common))
    if m.recovery is not None:
        out.append(EvalResult(metric_type="recovery", metric_name=f"Perplexity recovery vs the merged model ({by})",
                              metric_value=round(m.recovery, 4), **common))
    return out


def add_measured(data: Any, build_dir: Path, variant: str, model_name: str, measured_on: date | None = None) -> None:
    """Append the measured entries to a ModelCardData's eval results (after the declared ones)."""
    measured = measured_eval_results(build_dir, variant, measured_on)
    if not measured:
        return
    data.eval_results = [*(data.eval_results or []), *measured]
    data.model_name = data.model_name or model_name


def measured_from_card_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """The measured entries of a card's front matter (its model-index), for the catalog."""
    index = data.get("model-index")
    if not isinstance(index, list):
        return None
    for model in index:
        for result in (model or {}).get("results") or []:
            dataset = result.get("dataset") or {}
            if dataset.get("type") != DATASET_TYPE:
                continue
            metrics = {m.get("type"): m for m in result.get("metrics") or [] if isinstance(m, dict)}
            ppl = metrics.get("perplexity")
            if ppl is None:
                continue
            name = str(ppl.get("name") or "")
            label = name[name.find("(") + 1 : -1] if "(" in name and name.endswith(")") else name
            return {
                "perplexity": ppl.get("value"),
                "top1_agreement": (metrics.get("top1_agreement") or {}).get("value"),
                "recovery": (metrics.get("recovery") or {}).get("value"),
                "text": str(dataset.get("name") or ""),
                "text_sha256": dataset.get("revision"),
                "label": label,
            }
    return None
