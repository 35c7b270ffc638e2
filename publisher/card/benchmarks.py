"""Known benchmarks: the Hub dataset behind a task name, so the model-index names real datasets.

The Open LLM Leaderboard (v1) tasks are the numbers merge cards quote most; each maps to the
Hub dataset, configuration and split it evaluates and to lm-evaluation-harness's task id.
An aggregate ("Average") is a mean of tasks, not a dataset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str  # the display name
    dataset: str  # the Hub dataset id
    config: str | None
    split: str
    task_id: str  # lm-evaluation-harness's task name
    leaderboard_shots: int | None  # the Open LLM Leaderboard v1 setting


OPEN_LLM_LEADERBOARD_V1 = (
    Benchmark("AI2 Reasoning Challenge (ARC)", "allenai/ai2_arc", "ARC-Challenge", "test", "arc_challenge", 25),
    Benchmark("HellaSwag", "Rowan/hellaswag", None, "validation", "hellaswag", 10),
    Benchmark("MMLU", "cais/mmlu", "all", "test", "mmlu", 5),
    Benchmark("TruthfulQA", "truthfulqa/truthful_qa", "multiple_choice", "validation", "truthfulqa_mc2", 0),
    Benchmark("Winogrande", "allenai/winogrande", "winogrande_xl", "validation", "winogrande", 5),
    Benchmark("GSM8K", "openai/gsm8k", "main", "test", "gsm8k", 5),
)
_ALIASES = {
    "arc": "arc_challenge", "arcchallenge": "arc_challenge", "ai2reasoningchallenge": "arc_challenge",
    "ai2arc": "arc_challenge", "hellaswag": "hellaswag", "mmlu": "mmlu", "hendryckstest": "mmlu",
    "truthfulqa": "truthfulqa_mc2", "truthfulqamc2": "truthfulqa_mc2", "truthfulqamc": "truthfulqa_mc2",
    "winogrande": "winogrande", "gsm8k": "gsm8k",
}
_BY_TASK = {b.task_id: b for b in OPEN_LLM_LEADERBOARD_V1}
_BY_DATASET = {b.dataset.casefold(): b for b in OPEN_LLM_LEADERBOARD_V1}
_AGGREGATES = frozenset({"average", "avg", "mean", "overall", "averagescore"})


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def is_aggregate(task: str) -> bool:
    return _key(task) in _AGGREGATES


def benchmark_of(task: str, dataset: str | None = None) -> Benchmark | None:
    """The known benchmark a task name (or its stated dataset) refers to, if any."""
    alias = _ALIASES.get(_key(task.split("(")[0]))
    if alias is not None:
        return _BY_TASK[alias]
    if dataset is not None:
        return _BY_DATASET.get(dataset.casefold())
    return None
