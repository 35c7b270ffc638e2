"""Standalone FP8 quantization: ``publisher quantize`` vs llm-compressor, side by side.

    OMP_NUM_THREADS=1 python3 benchmarks/quantize_bench.py                 # 8-layer 7B-width model
    OMP_NUM_THREADS=1 python3 benchmarks/quantize_bench.py --full-rss      # + 32-layer 7B peak RSS

Three tools on the same synthetic bf16 Mistral (hidden 4096, intermediate 14336, vocab 32000,
8 layers: 2.0 B params, 4.0 GB in 2 GB shards), in alternating order, each run a separate
process under ``/usr/bin/time -v`` (wall time incl. interpreter start and imports, peak RSS):

- ``publisher quantize`` (this project);
- llm-compressor ``oneshot`` + ``save_pretrained(save_compressed=True)``;
- llm-compressor ``model_free_ptq`` (its streaming, per-shard path) on CPU.

llm-compressor runs in the oracle venv (``.oracle-venv-fp8``, made by
tests/oracle/fp8/regenerate.py). The input is read once beforehand so every run finds it in the
page cache. With ``--verify`` the first run's outputs are compared tensor by tensor.
``--full-rss`` generates the 32-layer 7B-shaped model (14.5 GB; free disk is checked), measures
``publisher quantize`` on it, then deletes it unless ``--keep``. Outputs are always deleted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import make_parents  # noqa: E402
import torch  # noqa: E402

from publisher.tensors import ModelFiles, TensorReader  # noqa: E402

VENV_PY = ROOT / ".oracle-venv-fp8" / "bin" / "python"
LLMC = ROOT / "benchmarks" / "llmc_fp8.py"
PRESET = {"fp8-dynamic": "FP8_DYNAMIC", "fp8-block": "FP8_BLOCK"}


@dataclass
class Run:
    tool: str
    wall: float
    rss_kib: int
    cpu: float
    load: float


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        with log.open("w") as out:
            proc = subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
        report = Path(tf.name).read_text()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}); see {log}")
    fields = {}
    for line in report.splitlines():
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
    wall_text = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
    wall = 0.0
    for part in wall_text.split(":"):
        wall = wall * 60 + float(part)
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    return wall, int(fields["Maximum resident set size (kbytes)"]), cpu


def commands(tool: str, src: Path, out: Path, scheme: str, threads: int) -> list[str]:
    if tool == "publisher":
        return [sys.executable, "-m", "publisher.cli", "quantize", str(src), "--out", str(out), "--scheme", scheme,
                "--threads", str(threads), "--max-shard-size", "2GB", "--quiet"]
    mode = "oneshot" if tool == "oneshot+save" else "model_free"
    return [str(VENV_PY), str(LLMC), mode, str(src), str(out), "--scheme", PRESET[scheme]]


def warm(folder: Path) -> None:
    for path in sorted(folder.glob("*.safetensors")):
        with path.open("rb") as f:
            while f.read(64 << 20):
                pass


def compare(a: Path, b: Path) -> tuple[int, int]:
    """(identical tensors, tensors) between two output folders, read in bands of rows."""
    fa, fb = ModelFiles.open(a), ModelFiles.open(b)
    same = 0
    with TensorReader() as r:
        for name, ia in fa.tensors.items():
            ib = fb.tensors.get(name)
            if ib is None or (ia.dtype, ia.shape) != (ib.dtype, ib.shape):
                continue
            if not ia.shape or not ia.shape[0]:
                same += bool(r.read(ia).view(torch.uint8).equal(r.read(ib).view(torch.uint8)))
                continue
            step = max(1, (64 << 20) // max(1, ia.nbytes // ia.shape[0]))
            same += all(
                r.read(ia, rows).view(torch.uint8).equal(r.read(ib, rows).view(torch.uint8))
                for rows in ((r0, min(ia.shape[0], r0 + step)) for r0 in range(0, ia.shape[0], step))
            )
    return same, max(len(fa.tensors), len(fb.tensors))


def loadavg() -> float:
    return os.getloadavg()[0]


def summarize(runs: list[Run]) -> dict[str, tuple[float, float, float]]:
    table: dict[str, tuple[float, float, float]] = {}
    print(f"\n{'tool':<14} {'wall runs (s)':<28} {'median':>8} {'peak RSS':>10} {'cpu (s)':>8} {'load':>10}")
    for tool in dict.fromkeys(r.tool for r in runs):
        mine = [r for r in runs if r.tool == tool]
        walls = [r.wall for r in mine]
        med = statistics.median(walls)
        rss = max(r.rss_kib for r in mine) / 2**20
        cpu = statistics.median(r.cpu for r in mine)
        loads = f"{min(r.load for r in mine):.1f}-{max(r.load for r in mine):.1f}"
        print(f"{tool:<14} {' / '.join(f'{w:.1f}' for w in walls):<28} {med:>7.1f}s {rss:>8.2f}GiB {cpu:>8.1f} {loads:>10}")
        table[tool] = (med, rss, cpu)
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT / ".bench", help="where models and outputs go")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scheme", default="fp8-dynamic", choices=sorted(PRESET))
    ap.add_argument("--threads", type=int, default=2, help="publisher quantize --threads")
    ap.add_argument("--tools", default="publisher,oneshot+save,model_free_ptq")
    ap.add_argument("--verify", action="store_true", help="compare the first run's outputs tensor by tensor")
    ap.add_argument("--full-rss", action="store_true", help="also measure peak RSS on the 32-layer 7B-shaped model")
    ap.add_argument("--keep", action="store_true", help="keep the generated 32-layer model")
    args = ap.parse_args()

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(ROOT)
    tools = args.tools.split(",")
    if any(t != "publisher" for t in tools) and not VENV_PY.exists():
        raise SystemExit(f"{VENV_PY} missing: run tests/oracle/fp8/regenerate.py first (it creates the venv)")
    args.root.mkdir(parents=True, exist_ok=True)
    src = args.root / "7b-8l"
    make_parents.main([str(src), "--preset", "7b", "--layers", "8", "--max-shard-size", "2GB"])
    print(f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, publisher --threads {args.threads}, scheme {args.scheme}")
    warm(src)

    runs: list[Run] = []
    kept: dict[str, Path] = {}
    for i in range(args.runs):
        order = tools[i % len(tools):] + tools[: i % len(tools)]  # rotate: each tool goes first once
        for tool in order:
            out = args.root / f"out-{tool}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            load = loadavg()
            wall, rss, cpu = timed(commands(tool, src, out, args.scheme, args.threads), env, args.root / f"{tool}-{i}.log")
            runs.append(Run(tool, wall, rss, cpu, load))
            print(f"run {i + 1} {tool:<14} {wall:6.1f} s  {rss / 2**20:5.2f} GiB  cpu {cpu:5.1f} s  (load {load:.1f})", flush=True)
            if args.verify and i == 0:
                kept[tool] = out
            else:
                shutil.rmtree(out, ignore_errors=True)
    table = summarize(runs)
    if "publisher" in table:
        mine = table["publisher"][0]
        for other, target in (("oneshot+save", 0.3), ("model_free_ptq", 1.0)):
            if other in table:
                ratio = mine / table[other][0]
                verdict = "ok" if ratio <= target else "MISSED"
                print(f"publisher / {other}: {ratio:.2f}x wall (target <= {target}x: {verdict}); "
                      f"RSS {table[other][1] / table['publisher'][1]:.1f}x smaller")
    if kept:
        for tool, out in kept.items():
            if tool != "publisher" and "publisher" in kept:
                same, total = compare(kept["publisher"], out)
                print(f"verify: publisher vs {tool}: {same}/{total} tensors bitwise identical")
        for out in kept.values():
            shutil.rmtree(out, ignore_errors=True)

    if args.full_rss:
        full = args.root / "7b-32l"
        code = make_parents.main([str(full), "--preset", "7b", "--max-shard-size", "5GB"])
        if code:
            return code
        out = args.root / "out-full"
        shutil.rmtree(out, ignore_errors=True)
        warm(full)
        wall, rss, cpu = timed(commands("publisher", full, out, args.scheme, args.threads), env, args.root / "full.log")
        gib = rss / 2**20
        print(f"\n32-layer 7B ({sum(p.stat().st_size for p in full.glob('*.safetensors')) / 1e9:.1f} GB): "
              f"publisher quantize {wall:.1f} s, peak RSS {gib:.2f} GiB ({rss} KiB), cpu {cpu:.1f} s "
              f"(target <= 1 GiB: {'ok' if gib <= 1 else 'MISSED'})")
        shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(full, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
