"""Gradient SLERP of two 7B-shaped checkpoints: publisher vs mergekit 0.1.5 vs a bare loop.

    python3 benchmarks/slerp_bench.py [--parents DIR] [--mergekit VENV] [--layers 32] [--keep]

Two synthetic Mistral-7B-shaped parents (hidden 4096, intermediate 14336, vocab 32000, bf16,
14.5 GB each at 32 layers) come from benchmarks/make_parents.py. The recipe is the
LazyMergekit gradient SLERP (self_attn [0, 0.5, 0.3, 0.7, 1], mlp [1, 0.5, 0.7, 0.3, 0],
0.5 elsewhere). In one script run, each from the same page-cache state and under
/usr/bin/time -v: mergekit-yaml (from the side venv tests/oracle/regenerate.py makes),
publisher build, publisher build with an fp8-dynamic variant in the same pass, and the bare
read-lerp-write loop (benchmarks/bare_loop.py, the I/O lower bound). Outputs are deleted after
each run; the parents too unless --keep.

Targets (issues 2 and 4): publisher <= 2 GiB peak RSS and <= 0.5x mergekit's wall time;
the FP8 variant costs <= 1.15x the plain SLERP's wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import GIB, drop_caches, folder_bytes, timed  # noqa: E402

MERGE = """\
slices:
  - sources:
      - model: {a}
        layer_range: [0, {layers}]
      - model: {b}
        layer_range: [0, {layers}]
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
TOOLS = ("mergekit", "publisher", "publisher-warm", "publisher+fp8", "bare")
FP8 = "name: bench/slerp\nquantize:\n  - scheme: fp8-dynamic\n"


def make_parents(root: Path, layers: int) -> None:
    have = sum(1 for m in ("a", "b") if (root / m / "config.json").exists())
    need = (2 - have + 1.6) * layers * 0.45 * GIB  # missing parents + one output (+ FP8) at a time
    free = shutil.disk_usage(root.parent if root.parent.exists() else ROOT).free
    if free < need:
        raise SystemExit(f"not enough free disk: {free / GIB:.0f} GiB free, about {need / GIB:.0f} GiB needed")
    for name, seed in (("a", 1), ("b", 2)):
        cmd = [sys.executable, str(ROOT / "benchmarks" / "make_parents.py"), str(root / name), "--preset", "7b", "--layers", str(layers), "--seed", str(seed)]
        subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parents", type=Path, default=ROOT / ".bench" / "slerp-parents")
    ap.add_argument("--mergekit", type=Path, default=ROOT / ".oracle-venv-mergekit", help="the mergekit 0.1.5 venv")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", action="store_true", help="keep the generated parents")
    ap.add_argument("--only", nargs="+", choices=TOOLS, default=list(TOOLS))
    args = ap.parse_args()

    parents = args.parents.absolute()
    generated = not all((parents / m / "config.json").exists() for m in ("a", "b"))
    make_parents(parents, args.layers)
    work = parents.parent / "slerp-bench-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    merge = MERGE.format(a=parents / "a", b=parents / "b", layers=args.layers)
    (work / "slerp.yml").write_text(merge)
    (work / "slerp_fp8.yml").write_text(FP8 + merge)
    # A fresh hash cache: the first publisher run pays for hashing the parents (as a first
    # build of local parents does); "publisher-warm" and "publisher+fp8" find the hashes cached.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT), PUBLISHER_CACHE=str(work / "cache"))
    in_bytes = folder_bytes(parents / "a") + folder_bytes(parents / "b")
    build = [sys.executable, "-m", "publisher.cli", "build", "--threads", str(args.threads), "--quiet", "--no-card"]
    commands = {
        "mergekit": [str(args.mergekit / "bin" / "mergekit-yaml"), str(work / "slerp.yml"), str(work / "out"), "--no-cuda", "--quiet", "--no-write-model-card"],
        "publisher": [*build, str(work / "slerp.yml"), "--out", str(work / "out")],
        "publisher-warm": [*build, str(work / "slerp.yml"), "--out", str(work / "out")],
        "publisher+fp8": [*build, str(work / "slerp_fp8.yml"), "--out", str(work / "out")],
        "bare": [sys.executable, str(ROOT / "benchmarks" / "bare_loop.py"), str(parents / "a"), str(parents / "b"), str(work / "out.safetensors")],
    }
    results: dict[str, tuple[float, float, float, str]] = {}
    try:
        for tool in args.only:
            cache = drop_caches(parents)
            results[tool] = (*timed(commands[tool], env), cache)
            shutil.rmtree(work / "out", ignore_errors=True)
            (work / "out.safetensors").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if generated and not args.keep:
            shutil.rmtree(parents, ignore_errors=True)

    print(f"gradient SLERP, 2 parents, 7B width, {args.layers} layers, bf16; inputs {in_bytes / 1e9:.1f} GB; threads {args.threads}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'tool':<16}{'wall s':>9}{'CPU s':>9}{'peak RSS GiB':>14}{'input GB/s':>12}  cache")
    for tool, (wall, rss, cpu, cache) in results.items():
        print(f"{tool:<16}{wall:>9.1f}{cpu:>9.1f}{rss:>14.2f}{in_bytes / 1e9 / wall:>12.2f}  {cache}")
    if "publisher" in results and "mergekit" in results:
        print(f"publisher / mergekit wall: {results['publisher'][0] / results['mergekit'][0]:.2f}x (target <= 0.5x); peak RSS {results['publisher'][1]:.2f} GiB (target <= 2)")
    if "publisher-warm" in results and "publisher+fp8" in results:
        print(f"SLERP+FP8 / SLERP wall (both with hashes cached): {results['publisher+fp8'][0] / results['publisher-warm'][0]:.2f}x (target <= 1.15x)")
    if "bare" in results and "publisher" in results:
        print(f"publisher / bare loop wall: {results['publisher'][0] / results['bare'][0]:.2f}x")


if __name__ == "__main__":
    main()
