"""The release gate on 7B-shaped models: the measured pass (512 tokens) and the structural checks.

    flock /tmp/bench.lock python3 benchmarks/check_bench.py /work/bench-data [--tokens 512]
        [--model DIR] [--fp8 DIR]

Uses (and creates when missing, with make_parents.py and `publisher quantize`) a 32-layer
7B-shaped synthetic Mistral at DATA/7b/base (or --model) and its fp8-dynamic copy at
DATA/7b/base-FP8 (or --fp8).
Each step runs in its own process under /usr/bin/time -v, so its peak RSS is the whole
process's (interpreter, torch, transformers included):

1. structural checks of the model folder and of the FP8 folder (headers, tokenizer, template);
2. the measured pass of the bf16 model alone (perplexity over the pydoc topics);
3. the measured pass of the FP8 copy against the bf16 model (as `publisher check` runs a
   variant: FP8 weights dequantized with their scales, per-token FP8 activations, each FP8
   weight compared with the bf16 weight, top-1 agreement and KL against the kept log-probs).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

STRUCTURAL = """
import sys, time
from pathlib import Path
t0 = time.monotonic()
from publisher.check.structural import check_model_folder
for folder in sys.argv[1:]:
    t = time.monotonic()
    found = check_model_folder(Path(folder), "bench", Path(folder))
    print(f"{folder}: {len(found)} findings {[f.line() for f in found]} in {time.monotonic() - t:.2f}s")
print(f"in-process total {time.monotonic() - t0:.2f}s (imports included)")
"""

MEASURE = """
import sys, time
from pathlib import Path
from publisher.check.measure import Target, measure
merged, tokens = Path(sys.argv[1]), int(sys.argv[2])
targets = [Target("merged", merged, str(merged))]
if len(sys.argv) > 3:
    targets.append(Target("FP8", Path(sys.argv[3]), sys.argv[3], compare=True))
r = measure(targets, tokens=tokens, log=print)
for m in r.measurements:
    print(m.model_dump_json())
for f in r.findings:
    print("FINDING", f.line())
"""


def ensure_models(data: Path, model: Path | None, fp8_dir: Path | None) -> tuple[Path, Path]:
    base = model or data / "7b" / "base"
    fp8 = fp8_dir or data / "7b" / "base-FP8"
    if not base.is_dir():
        subprocess.run([PY, str(ROOT / "benchmarks" / "make_parents.py"), str(base), "--preset", "7b"], check=True)
    if not fp8.is_dir():
        subprocess.run([PY, "-m", "publisher.cli", "quantize", str(base), "--scheme", "fp8-dynamic", "--out", str(fp8)], check=True)
    return base, fp8


def run(label: str, code: str, args: list[str], env: dict[str, str]) -> None:
    """One step in its own process: its output, then a table row (wall, peak RSS, CPU)."""
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", PY, "-c", textwrap.dedent(code), *args], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    print(textwrap.indent(proc.stdout.strip(), "    "))
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))  # type: ignore[union-attr]
    print(f"| {label} | {wall:.1f} s | {rss_kb / (1 << 20):.2f} GiB | {cpu:.1f} s |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="where the 7B-shaped models are (or go)")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--skip-fp8", action="store_true")
    ap.add_argument("--model", type=Path, help="an existing bf16 model folder to measure")
    ap.add_argument("--fp8", type=Path, help="where its fp8-dynamic copy is (made when missing)")
    args = ap.parse_args()
    base, fp8 = ensure_models(args.data, args.model, args.fp8)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    print(f"load average before: {os.getloadavg()}")
    print("| step | wall | peak RSS | CPU user+sys |\n|---|---:|---:|---:|")
    run("structural checks, bf16 + FP8 folders (process, imports included)", STRUCTURAL, [str(base), str(fp8)], env)
    run(f"measured pass, bf16 7B, {args.tokens} tokens", MEASURE, [str(base), str(args.tokens)], env)
    if not args.skip_fp8:
        run(f"measured pass, bf16 7B then FP8 vs bf16, {args.tokens} tokens", MEASURE, [str(base), str(args.tokens), str(fp8)], env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
