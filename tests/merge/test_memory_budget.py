"""The memory budget, asserted: a build whose tensors are large next to ``--memory-budget``, run
with many threads in a child process, peaks within the budget (or the one job that must run
alone) above a tiny build's footprint, plus a stated allowance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from publisher.build import BASELINE_RSS
from publisher.standins import TINY, MistralShape, Recipe, generate_model

ROOT = Path(__file__).resolve().parents[2]
# What a build may hold beyond its jobs: reader buffers, shard-writer state, the hasher's
# pending pieces, allocator slack.
ALLOWANCE = 64 << 20
# MLP weights of 4 Mi elements (8 MiB in bf16), 16 of them per parent: 16 MiB is one job's inputs.
WIDE = MistralShape(hidden=1024, intermediate=4096, layers=4, heads=8, kv_heads=4, vocab=1024)

RECIPE = """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, {layers}]
      - model: {b}
        layer_range: [0, {layers}]
merge_method: slerp
base_model: {a}
parameters:
  t: 0.4
dtype: bfloat16
"""

# The build in a child that reports its own peak RSS (no other child can pollute the figure).
_MEASURE = """
import json, resource, sys
from publisher.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _peak(recipe: Path, out: Path, *args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _MEASURE, "build", str(recipe), "--out", str(out), "--quiet", "--no-card", *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    return int(result["maxrss"])


def _biggest_job(recipe: Path, *args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "publisher.cli", "plan", str(recipe), "--json", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # under a budget smaller than any job, the estimate is the baseline plus the biggest job
    return int(json.loads(proc.stdout)["estimated_peak_rss_bytes"]) - BASELINE_RSS


def _pair(folder: Path, shape: MistralShape) -> tuple[Path, Path]:
    return (generate_model(folder / "a", shape, recipe=Recipe(seed=1)),
            generate_model(folder / "b", shape, recipe=Recipe(seed=2)))


def test_peak_rss_stays_within_the_memory_budget(tmp_path: Path) -> None:
    budget = 16 << 20
    tiny_a, tiny_b = _pair(tmp_path / "tiny", TINY)
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(RECIPE.format(a=tiny_a, b=tiny_b, layers=TINY.layers))
    baseline = _peak(tiny, tmp_path / "tiny-out", "--threads", "8")

    wide_a, wide_b = _pair(tmp_path / "wide", WIDE)
    wide = tmp_path / "wide.yaml"
    wide.write_text(RECIPE.format(a=wide_a, b=wide_b, layers=WIDE.layers))
    biggest = _biggest_job(wide)
    assert biggest > budget  # the budget binds: every job is over it, so each runs alone
    inputs = sum(f.stat().st_size for f in (tmp_path / "wide").rglob("*.safetensors"))
    assert inputs > max(budget, biggest) + ALLOWANCE  # holding the parents would break the bound below

    peak = _peak(wide, tmp_path / "wide-out", "--threads", "8", "--memory-budget", str(budget))
    bound = baseline + max(budget, biggest) + ALLOWANCE
    assert peak <= bound, (
        f"peak RSS {peak / 2**20:.0f} MiB > {bound / 2**20:.0f} MiB "
        f"(tiny build {baseline / 2**20:.0f} MiB + biggest job {biggest / 2**20:.0f} MiB + {ALLOWANCE >> 20} MiB)"
    )
