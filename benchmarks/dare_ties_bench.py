"""DARE-TIES of two 7B-width fine-tunes over a base: publisher build vs mergekit 0.1.5.

    python3 benchmarks/dare_ties_bench.py [--parents DIR] [--layers 16] [--threads 2] [--keep]

The three parents (16 layers of the 7B Mistral shape, bf16, ~7.7 GB each) come from
benchmarks/make_parents.py (``--family 2``), generated into DIR unless already there. The
recipe is the seed EmbeddedLLM/Mistral-7B-Merge-02-v0's: weight 0.5 and density 0.5 for each
fine-tune, bf16. Both tools run one after the other in this script, each under
``/usr/bin/time -v`` (wall time, peak RSS), each starting from a dropped page cache when the
kernel lets us (else after the same warm-up read of the parents). mergekit runs from the
side environment .oracle-venv-mergekit (tests/oracle/regenerate.py makes it). Outputs are
deleted afterwards; the parents too unless --keep.

Targets (issue 3): at most 3 GiB peak RSS and at most 0.4x mergekit's wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".oracle-venv-mergekit"
GIB = 1 << 30

RECIPE = """\
models:
  - model: {base}
  - model: {ft1}
    parameters: {{weight: 0.5, density: 0.5}}
  - model: {ft2}
    parameters: {{weight: 0.5, density: 0.5}}
merge_method: dare_ties
base_model: {base}
parameters: {{int8_mask: true}}
dtype: bfloat16
"""


def parents_ready(root: Path) -> bool:
    return all((root / m / "config.json").exists() for m in ("base", "ft1", "ft2"))


def make_parents(root: Path, layers: int) -> None:
    script = ROOT / "benchmarks" / "make_parents.py"
    if not script.exists():
        raise SystemExit(f"{script} is missing; generate the parents elsewhere and pass --parents")
    free = shutil.disk_usage(root.parent if root.parent.exists() else ROOT).free
    need = 3 * layers * 0.45 * GIB + 2 * layers * 0.45 * GIB  # parents + both outputs
    if free < need:
        raise SystemExit(f"not enough free disk: {free / GIB:.0f} GiB free, about {need / GIB:.0f} GiB needed")
    cmd = [sys.executable, str(script), str(root), "--preset", "7b", "--layers", str(layers), "--family", "2"]
    subprocess.run(cmd, check=True)


def drop_caches(parents: Path) -> str:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return "cold page cache (dropped)"
    except OSError:
        for f in sorted(parents.rglob("*.safetensors")):
            with f.open("rb") as fh:
                while fh.read(64 << 20):
                    pass
        return "page cache after the same warm-up read"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS GiB, CPU seconds) of a command, from /usr/bin/time -v."""
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    err = proc.stderr
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", err).group(1)) for k in ("User", "System"))  # type: ignore[union-attr]
    return wall, rss_kb * 1024 / GIB, cpu


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*.safetensors"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parents", type=Path, default=ROOT / ".bench" / "dare-parents")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", action="store_true", help="keep the generated parents")
    ap.add_argument("--memory-budget", help="passed to publisher build (default: its own)")
    ap.add_argument("--only", choices=("publisher", "mergekit"), help="run one tool only")
    args = ap.parse_args()

    parents = args.parents.absolute()
    generated = False
    if not parents_ready(parents):
        make_parents(parents, args.layers)
        generated = True
    work = parents.parent / "dare-bench-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    recipe = work / "dare_ties.yml"
    recipe.write_text(RECIPE.format(base=parents / "base", ft1=parents / "ft1", ft2=parents / "ft2"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    in_bytes = sum(folder_bytes(parents / m) for m in ("base", "ft1", "ft2"))

    results: dict[str, tuple[float, float, float, str]] = {}
    try:
        if args.only in (None, "publisher"):
            cache = drop_caches(parents)
            cmd = [sys.executable, "-m", "publisher.cli", "build", str(recipe), "--out", str(work / "ours"), "--threads", str(args.threads), "--quiet", "--no-card"]
            if args.memory_budget:
                cmd += ["--memory-budget", args.memory_budget]
            wall, rss, cpu = timed(cmd, env)
            results["publisher build"] = (wall, rss, cpu, cache)
            shutil.rmtree(work / "ours", ignore_errors=True)
        if args.only in (None, "mergekit"):
            mergekit = VENV / "bin" / "mergekit-yaml"
            if not mergekit.exists():
                raise SystemExit("no .oracle-venv-mergekit: run python3 tests/oracle/regenerate.py once")
            cache = drop_caches(parents)
            cmd = [str(mergekit), str(recipe), str(work / "mergekit"), "--no-cuda", "--quiet", "--no-write-model-card", "--random-seed", "0"]
            wall, rss, cpu = timed(cmd, env)
            results["mergekit 0.1.5"] = (wall, rss, cpu, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if generated and not args.keep:
            shutil.rmtree(parents, ignore_errors=True)

    print(f"DARE-TIES, 2 fine-tunes + base, 7B width, {args.layers} layers, bf16; inputs {in_bytes / 1e9:.1f} GB; threads {args.threads}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other processes skew wall times)")
    print(f"{'tool':<18}{'wall s':>9}{'CPU s':>9}{'peak RSS GiB':>14}{'input GB/s':>12}  cache")
    for tool, (wall, rss, cpu, cache) in results.items():
        print(f"{tool:<18}{wall:>9.1f}{cpu:>9.1f}{rss:>14.2f}{in_bytes / 1e9 / wall:>12.2f}  {cache}")
    if len(results) == 2:
        ours, theirs = results["publisher build"], results["mergekit 0.1.5"]
        print(f"publisher / mergekit wall time: {ours[0] / theirs[0]:.2f}x (target <= 0.4x); peak RSS {ours[1]:.2f} GiB (target <= 3)")


if __name__ == "__main__":
    main()
