"""Evaluation results for the card: an lm-eval results JSON or inline numbers → table + model-index.

lm-evaluation-harness writes ``{"results": {task: {"acc,none": 0.61, "acc_stderr,none": ...}},
"configs": {task: {"dataset_path", "dataset_name", "test_split", "num_fewshot"}}, "n-shot": ...}``
(0.4) or ``{"results": {task: {"acc": ...}}}`` (0.3). Every numeric metric becomes a row; stderr
is kept beside its metric; subtasks of a group that is itself reported are left out (the
group's number is what people compare).

A row names a dataset only when it is one: the recipe's ``dataset``, lm-eval's
``dataset_path``, or the Hub dataset of a known benchmark (``benchmarks.py``). An aggregate
("Average") or a task of unknown dataset is shown in the table and left out of the
model-index and of ``.eval_results/``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from publisher.card.benchmarks import Benchmark, benchmark_of, is_aggregate
from publisher.card.schema import Comparison, EvalSource, Evaluation
from publisher.errors import CardError

EVAL_RESULTS_DIR = ".eval_results"


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
    task_id: str | None = None  # the task within the dataset (lm-eval's task name)
    benchmark: str | None = None  # the benchmark's display name, when known
    aggregate: bool = False  # an average of other tasks: not a dataset
    harness: str | None = None
    date: dt.date | None = None
    source: EvalSource | None = None

    @property
    def in_model_index(self) -> bool:
        return self.dataset is not None and not self.aggregate

    @property
    def display_task(self) -> str:
        return self.benchmark or self.task


class SourceRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # "Open LLM Leaderboard" ("" when only the harness or date is known)
    url: str | None
    detail: str  # "lm-evaluation-harness 0.4.2, 2023-12-20"


class ModelColumn(BaseModel):
    """A column of the evaluation table: the model the numbers were measured on."""

    name: str
    repo_id: str | None  # linked when a repo id
    note: str | None = None
    sources: list[SourceRef] = []  # one per distinct source of its numbers


class ComparisonTable(BaseModel):
    """Rows of (task, metric, shots, the measured model's value, each comparison model's value)."""

    measured: ModelColumn
    models: list[ModelColumn]
    rows: list[tuple[str, str, str, str, list[str]]]
    aggregates: list[str]  # tasks of the table that are aggregates (not in the model-index)

    @property
    def notes(self) -> list[str | None]:
        return [m.note for m in self.models]


def format_metric(v: float | None) -> str:
    if v is None:
        return "—"
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def load_evaluations(
    spec: str | list[Evaluation] | None, base_dir: Path, source: EvalSource | None = None
) -> list[EvalRow]:
    """The recipe's ``card.evaluations``: a results file (relative to the recipe) or inline list.

    ``source``: ``card.evaluation_source``, the default source of every number.
    """
    if spec is None:
        return []
    if isinstance(spec, list):
        return [_inline_row(e, source) for e in spec]
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
    return [_with_benchmark(r.model_copy(update={"source": source})) for r in parse_lm_eval(data, str(path))]


def _inline_row(e: Evaluation, default_source: EvalSource | None) -> EvalRow:
    source = e.source or default_source
    row = EvalRow(
        task=e.task, metric=e.metric, value=e.value, dataset=e.dataset, dataset_config=e.dataset_config,
        split=e.split, few_shot=e.n_shot, harness=e.harness, date=e.date, source=source,
    )
    return _with_benchmark(row)


def _with_benchmark(row: EvalRow) -> EvalRow:
    """Fill in what a known benchmark fixes (its dataset, config, split, task id) and flag aggregates."""
    if is_aggregate(row.task):
        return row.model_copy(update={"aggregate": True, "dataset": None})
    b: Benchmark | None = benchmark_of(row.task, row.dataset)
    if b is None:
        return row
    shots = row.few_shot
    if shots is None and row.source is not None and b.leaderboard_shots is not None and "open llm leaderboard" in row.source.name.casefold():
        shots = b.leaderboard_shots  # the leaderboard ran every model with the same fixed setting
    return row.model_copy(
        update={
            "dataset": row.dataset or b.dataset,
            "dataset_config": row.dataset_config or b.config,
            "split": row.split or b.split,
            "task_id": row.task_id or b.task_id,
            "benchmark": b.name,
            "few_shot": shots,
        }
    )


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
    version = data.get("lm_eval_version")
    harness = "lm-evaluation-harness" + (f" {version}" if isinstance(version, str) else "")
    stamp = _num(data.get("date"))
    run_date = dt.datetime.fromtimestamp(stamp, dt.UTC).date() if stamp is not None and stamp > 0 else None
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
                    task_id=task,
                    harness=harness,
                    date=run_date,
                )
            )
    if not rows:
        raise CardError("the results file has no numeric metrics", where=where)
    return rows


def eval_results(rows: list[EvalRow]) -> list[Any]:
    """huggingface_hub EvalResults (→ the card's model-index): datasets only, aggregates left out."""
    from huggingface_hub import EvalResult

    out = []
    for r in rows:
        if not r.in_model_index:
            continue
        source = r.source if r.source is not None and r.source.url else None
        out.append(
            EvalResult(
                task_type="text-generation",
                dataset_type=r.dataset or r.task,
                dataset_name=r.display_task,
                dataset_config=r.dataset_config,
                dataset_split=r.split,
                dataset_args={"num_few_shot": r.few_shot} if r.few_shot is not None else None,
                metric_type=r.metric,
                metric_value=r.value,
                source_name=source.name if source else None,
                source_url=source.url if source else None,
            )
        )
    return out


def source_ref(r: EvalRow) -> SourceRef | None:
    """Where a row's number comes from: the source (linked) and how it was measured."""
    extra = ", ".join(p for p in (r.harness or "", r.date.isoformat() if r.date else "") if p)
    if r.source is None and not extra:
        return None
    return SourceRef(name=r.source.name if r.source else "", url=r.source.url if r.source else None, detail=extra)


def merge_sources(refs: list[SourceRef]) -> list[SourceRef]:
    """One entry per source (name, url), its distinct details joined."""
    merged: dict[tuple[str, str | None], list[str]] = {}
    for ref in refs:
        details = merged.setdefault((ref.name, ref.url), [])
        if ref.detail and ref.detail not in details:
            details.append(ref.detail)
    return [SourceRef(name=n, url=u, detail="; ".join(d)) for (n, u), d in merged.items()]


def shots_text(n: int | None) -> str:
    return "—" if n is None else f"{n}-shot"


def comparison_table(
    rows: list[EvalRow], comparisons: list[Comparison], *, measured: str, measured_repo: str | None
) -> ComparisonTable:
    """The measured model's numbers beside each comparison model's, matched by task name.

    ``measured``: the model the recipe's numbers were measured on (the merged model, also on
    its quantized copies' cards), so every column is labelled with its own model.
    """
    table: list[tuple[str, str, str, str, list[str]]] = []
    used: set[tuple[int, str]] = set()
    for r in rows:
        others = []
        for i, c in enumerate(comparisons):
            v = None
            for key in (r.task, f"{r.task}/{r.metric}", *([r.benchmark] if r.benchmark else [])):
                if v is None and key in c.results:
                    v = c.results[key]
                    used.add((i, key))
            others.append(format_metric(v))
        table.append((r.display_task, r.metric, shots_text(r.few_shot), format_metric(r.value), others))
    extra_tasks = []
    for i, c in enumerate(comparisons):
        for task in c.results:
            if (i, task) not in used and task not in extra_tasks:
                extra_tasks.append(task)
    for task in extra_tasks:
        table.append((task, "", "—", "—", [format_metric(c.results.get(task)) for c in comparisons]))
    sources = merge_sources([ref for r in rows if (ref := source_ref(r))])
    columns = [
        ModelColumn(
            name=c.model, repo_id=c.model if _is_repo_id(c.model) else None, note=c.note,
            sources=[SourceRef(name=c.source.name, url=c.source.url, detail="")] if c.source else [],
        )
        for c in comparisons
    ]
    aggregates = [r.display_task for r in rows if r.aggregate]
    aggregates += [t for t in extra_tasks if is_aggregate(t)]
    return ComparisonTable(
        measured=ModelColumn(name=measured, repo_id=measured_repo, sources=sources),
        models=columns,
        rows=table,
        aggregates=list(dict.fromkeys(aggregates)),
    )


def _is_repo_id(name: str) -> bool:
    from publisher.recipe import REPO_ID_RE

    return bool(REPO_ID_RE.match(name))


def eval_result_files(rows: list[EvalRow]) -> dict[str, str]:
    """The Hub's ``.eval_results/<task>.yaml`` files (huggingface_hub's EvalResultEntry format).

    One file per dataset task; aggregates and rows without a dataset are left out, as in the
    model-index. Keys are paths relative to the model folder.
    """
    import yaml
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    files: dict[str, list[Any]] = {}
    for r in rows:
        if not r.in_model_index or r.dataset is None:
            continue
        task_id = r.task_id or r.dataset_config or "default"
        notes = ", ".join(p for p in (r.metric, shots_text(r.few_shot) if r.few_shot is not None else "", r.harness or "") if p)
        url = r.source.url if r.source is not None else None
        entry = EvalResultEntry(
            dataset_id=r.dataset,
            task_id=task_id,
            value=r.value,
            date=r.date.isoformat() if r.date else None,
            source_url=url,
            source_name=r.source.name if r.source is not None and url else None,
            notes=notes or None,
        )
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_id).strip("._") or "result"
        files.setdefault(f"{EVAL_RESULTS_DIR}/{name}.yaml", []).append(entry)
    return {
        path: yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True)
        for path, entries in sorted(files.items())
    }
