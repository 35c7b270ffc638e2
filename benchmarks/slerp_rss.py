"""Peak RSS of `publisher build` on the 16-layer 7B-width SLERP, over several runs.

    python3 benchmarks/slerp_rss.py [--runs 5] [--parents /work/bench-data/slerp16] [--threads 2]

Issue 16's target: under 2 GiB in every run (the engine's default memory budget, 1.5 GiB).
Each run is a fresh process with the default options (plus --no-card); its peak RSS comes from
/usr/bin/time. The parents (two 16-layer SEVEN_B-width models, ~7.5 GB each) are made once
with benchmarks/make_parents.py and reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import GIB, timed  # noqa: E402

TARGET_GIB = 2.0
RECIPE = """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, 16]
      - model: {b}
        layer_range: [0, 16]
merge_method: slerp
base_model: {a}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parents", type=Path, default=ROOT / ".bench" / "slerp16")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    py = sys.executable
    for name, seed in (("a", 1), ("b", 2)):
        subprocess.run([py, str(ROOT / "benchmarks" / "make_parents.py"), str(args.parents / name),
                        "--preset", "7b", "--layers", "16", "--seed", str(seed)], check=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="slerp-rss-", dir=args.parents) as tmp:
        recipe = Path(tmp) / "slerp16.yaml"
        recipe.write_text(RECIPE.format(a=args.parents / "a", b=args.parents / "b"))
        peaks = []
        for run in range(1, args.runs + 1):
            out = Path(tmp) / "out"
            wall, rss, cpu = timed([py, "-m", "publisher.cli", "build", str(recipe), "--out", str(out), "--quiet",
                                    "--no-card", "--threads", str(args.threads)], env)
            shutil.rmtree(out)
            peaks.append(rss)
            print(f"run {run}: wall {wall:6.1f} s  cpu {cpu:6.1f} s  peak RSS {rss:.2f} GiB", flush=True)
    over = [p for p in peaks if p >= TARGET_GIB]
    print(f"peak RSS over {len(peaks)} runs: min {min(peaks):.2f}, max {max(peaks):.2f} GiB; "
          f"{len(over)} at or over the {TARGET_GIB:.0f} GiB target")
    print(f"(1 GiB = {GIB} bytes)")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
