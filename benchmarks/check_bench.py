"""The release gate on 7B-shaped models: the structural checks and the measured pass (512 tokens).

    flock /tmp/bench.lock python3 benchmarks/check_bench.py /work/bench-data/gate [--tokens 512]
        [--model DIR] [--fp8 DIR] [--only-structural] [--skip-fp8]

Uses (and creates when missing, with make_parents.py and `publisher quantize`) a 32-layer
7B-shaped synthetic Mistral at DATA/7b/base (or --model) and its fp8-dynamic copy at
DATA/7b/base-FP8 (or --fp8), and a build folder DATA/7b/build made of hard links to both
(the merged model and variants/FP8, with a manifest.json), as `publisher build` lays it out.
Each step runs in its own process under /usr/bin/time -v, so its peak RSS is the whole
process's (interpreter, torch, transformers included):

1. `publisher check DATA/7b/build --no-measure`, the whole program, three times (the user's
   structural path: both folders, headers, tokenizer, template; no torch);
2. the same checks in-process, imports and each folder's checks timed apart;
3. the measured pass of the bf16 model alone (perplexity over the pydoc topics);
4. the measured pass of the FP8 copy against the bf16 model (as `publisher check` runs a
   variant: FP8 weights dequantized with their scales, per-token FP8 activations, each FP8
   weight compared with the bf16 weight, top-1 agreement and KL against the kept log-probs).
"""

from __future__ import annotations

import argparse
import json
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
from publisher.check import notorch
notorch.process_ends_after_command()
notorch.tokenizers_without_torch()  # as `publisher check --no-measure` does
from publisher.check.structural import check_model_folder
from transformers import AutoTokenizer
print(f"imports (publisher.check, transformers' AutoTokenizer without torch) {time.monotonic() - t0:.2f}s")
t1 = time.monotonic()
for folder in sys.argv[1:]:
    t = time.monotonic()
    found = check_model_folder(Path(folder), "bench", Path(folder))
    print(f"{folder}: {len(found)} findings {[f.line() for f in found]} in {time.monotonic() - t:.2f}s")
print(f"checks of both folders {time.monotonic() - t1:.2f}s; in-process total {time.monotonic() - t0:.2f}s")
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


def ensure_build(data: Path, base: Path, fp8: Path) -> Path:
    """A build folder as `publisher build` writes it (merged + variants/FP8), hard links to the models."""
    out = data / "7b" / "build"
    (out / "variants" / "FP8").mkdir(parents=True, exist_ok=True)
    for src, dst in ((base, out), (fp8, out / "variants" / "FP8")):
        for f in src.iterdir():
            if f.is_file() and f.name not in ("manifest.json", "build.json", "checks.json") and not (dst / f.name).exists():
                os.link(f, dst / f.name)
    manifest = json.loads((fp8 / "manifest.json").read_text())  # publisher quantize's: inputs, the FP8 variant
    variant = dict(manifest["variants"][0], folder="variants/FP8")
    merged = dict(variant, name="merged", folder="", quantization=None, dtype="BF16", files=[])
    manifest.update(variants=[merged, variant], out_dtype="BF16", merge_method="linear")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def run(label: str, code: str | list[str], args: list[str], env: dict[str, str]) -> None:
    """One step in its own process: its output, then a table row (wall, peak RSS, CPU)."""
    t0 = time.monotonic()
    cmd = [*code, *args] if isinstance(code, list) else [PY, "-c", textwrap.dedent(code), *args]
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    print(textwrap.indent(proc.stdout.strip(), "    "))
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for k in ("User", "System"))  # type: ignore[union-attr,misc]
    print(f"| {label} | {wall:.1f} s | {rss_kb / (1 << 20):.2f} GiB | {cpu:.1f} s |", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="where the 7B-shaped models are (or go)")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--skip-fp8", action="store_true")
    ap.add_argument("--only-fp8", action="store_true", help="just the FP8 step")
    ap.add_argument("--model", type=Path, help="an existing bf16 model folder to measure")
    ap.add_argument("--fp8", type=Path, help="where its fp8-dynamic copy is (made when missing)")
    ap.add_argument("--only-structural", action="store_true", help="just the structural steps")
    args = ap.parse_args()
    base, fp8 = ensure_models(args.data, args.model, args.fp8)
    build = ensure_build(args.data, base, fp8)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    print(f"load average before: {os.getloadavg()}")
    print("| step | wall | peak RSS | CPU user+sys |\n|---|---:|---:|---:|")
    if not args.only_fp8:
        program = [PY, "-m", "publisher", "check", str(build), "--no-measure"]
        for n in (1, 2, 3):
            run(f"`publisher check BUILD --no-measure`, whole process, run {n}", program, [], env)
        run("structural checks, bf16 + FP8 folders, in-process", STRUCTURAL, [str(build), str(build / "variants" / "FP8")], env)
    if args.only_structural:
        return 0
    if not args.only_fp8:
        run(f"measured pass, bf16 7B, {args.tokens} tokens", MEASURE, [str(base), str(args.tokens)], env)
    if not args.skip_fp8:
        run(f"measured pass, bf16 7B then FP8 vs bf16, {args.tokens} tokens", MEASURE, [str(base), str(args.tokens), str(fp8)], env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
