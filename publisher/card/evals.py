"""Evaluation results for the card: an lm-eval results JSON or inline numbers → table + model-index.

lm-evaluation-harness writes ``{"results": {task: {"acc,none": 0.61, "acc_stderr,none": ...}},
"configs": {task: {"dataset_path", "dataset_name", "test_split", "num_fewshot"}}, "n-shot": ...}``
(0.4) or ``{"results": {task: {"acc": ...}}}`` (0.3). Every numeric metric becomes a row; stderr
is kept beside its metric; subtasks of a group that is itself reported are left out (the
group's number is what people compare).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from publisher.errors import CardError
from publisher.recipe import Comparison, Evaluation


class EvalRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    metric: str
    value: float
    stderr: float | None = None
    dataset: str | None = None  # Hub dataset id or lm-eval dataset_path
    dataset_config: str | None = None
    split: str | None = None
    few_shot: int | None = None


class ComparisonTable(BaseModel):
    """Rows of (task, metric, this model's value, each comparison model's value)."""

    models: list[str]
    notes: list[str | None]
    rows: list[tuple[str, str, str, list[str]]]


def format_metric(v: float | None) -> str:
    if v is None:
        return "—"
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def load_evaluations(spec: str | list[Evaluation] | None, base_dir: Path) -> list[EvalRow]:
    """The recipe's ``card.evaluations``: a results file (relative to the recipe) or inline list."""
    if spec is None:
        return []
    if isinstance(spec, list):
        return [
            EvalRow(task=e.task, metric=e.metric, value=e.value, dataset=e.dataset, split=e.split, few_shot=e.few_shot)
            for e in spec
        ]
    path = Path(spec) if Path(spec).is_absolute() else base_dir / spec
    if not path.is_file():
        raise CardError(
            f"evaluation file {spec} not found (looked in {base_dir})",
            where="card.evaluations",
            fix="give a path relative to the recipe, or pass --recipes DIR so the recipe's folder is known",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        line = f":{e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise CardError(f"evaluation file is not valid JSON ({e})", where=f"{path}{line}") from e
    return parse_lm_eval(data, str(path))


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def parse_lm_eval(data: Any, where: str) -> list[EvalRow]:
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise CardError(
            "no 'results' object: not an lm-evaluation-harness results file",
            where=where,
            fix="pass the results_*.json that lm_eval --output_path writes, or list evaluations inline",
        )
    results: dict[str, Any] = data["results"]
    configs: dict[str, Any] = _obj(data.get("configs"))
    n_shot: dict[str, Any] = _obj(data.get("n-shot"))
    groups: dict[str, Any] = _obj(data.get("group_subtasks"))
    hidden = {sub for g, subs in groups.items() if g in results and isinstance(subs, list) for sub in subs}
    old_config: dict[str, Any] = _obj(data.get("config"))
    rows: list[EvalRow] = []
    for task in sorted(results):
        if task in hidden:
            continue
        metrics = results[task]
        if not isinstance(metrics, dict):
            raise CardError(f"results.{task} is not an object", where=where)
        cfg = _obj(configs.get(task))
        shots = n_shot.get(task, cfg.get("num_fewshot", old_config.get("num_fewshot")))
        split = cfg.get("test_split") or cfg.get("validation_split")
        for key in sorted(metrics):
            name, _, filt = key.partition(",")
            if name.endswith("_stderr") or name in ("alias", "samples", "name"):
                continue
            value = _num(metrics[key])
            if value is None:
                continue
            stderr_key = f"{name}_stderr,{filt}" if filt else f"{name}_stderr"
            metric = name if filt in ("", "none") else f"{name} ({filt})"
            rows.append(
                EvalRow(
                    task=str(metrics.get("alias", task)).strip(" -") or task,
                    metric=metric,
                    value=value,
                    stderr=_num(metrics.get(stderr_key)),
                    dataset=cfg.get("dataset_path") if isinstance(cfg.get("dataset_path"), str) else None,
                    dataset_config=cfg.get("dataset_name") if isinstance(cfg.get("dataset_name"), str) else None,
                    split=split if isinstance(split, str) else None,
                    few_shot=shots if isinstance(shots, int) and not isinstance(shots, bool) else None,
                )
            )
    if not rows:
        raise CardError("the results file has no numeric metrics", where=where)
    return rows


def eval_results(rows: list[EvalRow]) -> list[Any]:
    """huggingface_hub EvalResults (→ the card's model-index)."""
    from huggingface_hub import EvalResult

    out = []
    for r in rows:
        out.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=r.dataset or r.task,
                dataset_name=r.task,
                dataset_config=r.dataset_config,
                dataset_split=r.split,
                dataset_args={"num_few_shot": r.few_shot} if r.few_shot is not None else None,
                metric_type=r.metric,
                metric_value=r.value,
            )
        )
    return out


def comparison_table(rows: list[EvalRow], comparisons: list[Comparison]) -> ComparisonTable:
    """This model's numbers beside each comparison model's, matched by task name."""
    models = [c.model for c in comparisons]
    table: list[tuple[str, str, str, list[str]]] = []
    used: set[tuple[int, str]] = set()
    for r in rows:
        others = []
        for i, c in enumerate(comparisons):
            v = c.results.get(r.task)
            if v is None:
                v = c.results.get(f"{r.task}/{r.metric}")
                if v is not None:
                    used.add((i, f"{r.task}/{r.metric}"))
            else:
                used.add((i, r.task))
            others.append(format_metric(v))
        table.append((r.task, r.metric, format_metric(r.value), others))
    extra_tasks = []
    for i, c in enumerate(comparisons):
        for task in c.results:
            if (i, task) not in used and task not in extra_tasks:
                extra_tasks.append(task)
    for task in extra_tasks:
        table.append((task, "", "—", [format_metric(c.results.get(task)) for c in comparisons]))
    return ComparisonTable(models=models, notes=[c.note for c in comparisons], rows=table)
