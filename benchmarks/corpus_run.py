"""Run a corpus of published mergekit configs through ``publisher plan`` and ``publisher build``.

    .venv/bin/python benchmarks/corpus_run.py CORPUS_DIR [--only STEM,...] [--no-build]
        [--mergekit] [--json OUT.json] [--work DIR]

For every ``*.yaml`` in CORPUS_DIR (kept outside this repository: issue 11 forbids copying
published configs into tests/), it finds every model the config names (``model:``,
``base_model:``, ``tokenizer_source:`` / ``tokenizer.source`` / a token's ``source``, both
halves of a LoRA reference ``base+adapter``, a ``{model: {path: …}}`` form), generates a tiny
deterministic stand-in for each (a Mistral with as many layers as the config's largest
``layer_range`` needs, 32 otherwise; a PEFT adapter for an adapter half), and writes the config
with each model name replaced by its stand-in's folder, nothing else changed. Names that are
another document's ``name:`` (mergekit-multi stages) are left alone. Then it runs the real
``publisher plan`` and ``publisher build`` command lines and prints one row per config: plan ok,
build ok, and the failing command's one-line error.

With ``--mergekit`` every config that failed is also given to mergekit 0.1.5 (``mergekit-yaml``
from the oracle side environment ``.oracle-venv-mergekit``, created by
``tests/oracle/regenerate.py``; ``--oracle-venv`` points elsewhere) on the same stand-ins, so
the failure is classified as "mergekit refuses too" or "ours only" (a mergekit-multi file goes
to ``mergekit-multi``). ``--compare`` runs mergekit on every config and, where both built,
compares every output tensor with mergekit's (dtype, shape, values); random methods (DARE,
DELLA) are not compared, since mergekit draws their masks from a global RNG.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publisher.standins import TINY, Recipe, generate_model, with_layers  # noqa: E402
from publisher.standins_lora import generate_lora  # noqa: E402

PUBLISHER = [sys.executable, "-m", "publisher"]
KEYWORDS = {"union", "base"}


@dataclass
class Row:
    config: str
    models: int = 0
    layers: int = 32
    plan_ok: bool = False
    build_ok: bool | None = None
    error: str = ""
    mergekit: str = ""  # "", "ok" (mergekit builds it: ours only), or mergekit's one-line error
    bytes: str = ""  # with --compare: our tensors against mergekit's on the same stand-ins
    notes: list[str] = field(default_factory=list)


def _load_docs(text: str) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError:
        return []


def _refs_in(node: Any, out: list[str]) -> None:
    """Every string that names a model, wherever mergekit reads one."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("model", "base_model") and isinstance(value, str):
                out.append(value)
            elif key == "model" and isinstance(value, dict):
                path = value.get("path") or value.get("model")
                if isinstance(path, str):
                    out.append(path)
                lora = value.get("lora")
                if isinstance(lora, dict) and isinstance(lora.get("path"), str):
                    out.append(lora["path"])
            elif key in ("tokenizer_source", "source") and isinstance(value, str) and value not in KEYWORDS:
                out.append(value)
            _refs_in(value, out)
    elif isinstance(node, list):
        for item in node:
            _refs_in(item, out)


def _layer_needs(node: Any) -> int:
    best = 0
    if isinstance(node, dict):
        lr = node.get("layer_range")
        if isinstance(lr, list) and len(lr) == 2 and all(isinstance(x, int) for x in lr):
            best = max(best, lr[1])
        for value in node.values():
            best = max(best, _layer_needs(value))
    elif isinstance(node, list):
        for item in node:
            best = max(best, _layer_needs(item))
    return best


def _split(ref: str) -> list[str]:
    """A reference's parts that name folders: ``base+adapter`` is two, ``@rev`` dropped."""
    parts = ref.split("+") if "+" in ref and not ref.startswith(("./", "/")) else [ref]
    return [p.split("@", 1)[0] if "@" in p and not p.startswith(("./", "/")) else p for p in parts]


def stand_ins(text: str, root: Path) -> tuple[str, int, int, list[str]]:
    """The config text with every model name mapped to a stand-in folder generated under root."""
    docs = _load_docs(text)
    stage_names = {d.get("name") for d in docs if isinstance(d, dict) and isinstance(d.get("name"), str)}
    refs: list[str] = []
    for d in docs:
        _refs_in(d, refs)
    layers = max([32, *(_layer_needs(d) for d in docs)])
    shape = with_layers(TINY, layers)
    bases: list[str] = []
    adapters: list[str] = []
    for ref in refs:
        if ref in stage_names:
            continue
        parts = _split(ref)
        for i, part in enumerate(parts):
            target = adapters if i > 0 else bases
            if part not in bases and part not in adapters and part not in stage_names:
                target.append(part)
    mapping: dict[str, Path] = {}
    notes: list[str] = []
    for i, name in enumerate(bases):
        recipe = Recipe(seed=7000 + i, base_seed=7000, perturbation=0.004) if i else Recipe(seed=7000)
        mapping[name] = generate_model(root / f"m{i:02d}", shape, recipe=recipe)
    for i, name in enumerate(adapters):
        mapping[name] = generate_lora(root / f"lora{i:02d}", shape, seed=8000 + i, dtype="BF16")
    out = text
    for name in sorted(mapping, key=len, reverse=True):
        pattern = r"(?<![\w./\\:-])" + re.escape(name) + r"(?![\w./\\-])"
        out = re.sub(pattern, lambda _m, p=str(mapping[name]): p, out)
    if not docs:
        notes.append("not YAML as published")
    return out, len(mapping), layers, notes


def _one_line(stderr: str, stdout: str = "") -> str:
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower() or ln.startswith(("RuntimeError", "ValueError", "KeyError"))]
    pick = (errs or lines or ["(no message)"])[-1]
    return pick[:300]


def _env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1", TOKENIZERS_PARALLELISM="false")


def run_publisher(config: Path, out: Path, build: bool, row: Row, timeout: int) -> None:
    env = _env()
    try:
        plan = subprocess.run([*PUBLISHER, "plan", str(config)], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        row.error = f"plan: timed out after {timeout}s"
        return
    row.plan_ok = plan.returncode == 0
    if not row.plan_ok:
        row.error = "plan: " + _one_line(plan.stderr, plan.stdout)
    if not build:
        return
    cmd = [*PUBLISHER, "build", str(config), "--out", str(out), "--quiet", "--threads", "2"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        row.build_ok = False
        row.error = row.error or f"build: timed out after {timeout}s"
        return
    row.build_ok = proc.returncode == 0 and out.is_dir()
    if not row.build_ok and not row.error:
        row.error = "build: " + _one_line(proc.stderr, proc.stdout)


def run_mergekit(venv: Path, config: Path, out: Path, row: Row, timeout: int) -> None:
    env = dict(_env(), TRANSFORMERS_OFFLINE="1")
    options = ["--no-cuda", "--quiet", "--no-write-model-card", "--lora-merge-cache", str(out.parent / "lora-cache")]
    if len(_load_docs(config.read_text())) > 1:  # a mergekit-multi file: its own command reads it
        stages = out.parent / "mergekit-stages"
        cmd = [str(venv / "bin" / "mergekit-multi"), str(config), "--out-path", str(out), "-I", str(stages), *options]
    else:
        cmd = [str(venv / "bin" / "mergekit-yaml"), str(config), str(out), *options]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        row.mergekit = f"timed out after {timeout}s"
        return
    row.mergekit = "ok" if proc.returncode == 0 else _one_line(proc.stderr, proc.stdout)


RANDOM = ("dare_ties", "dare_linear", "della", "della_linear")


def _tensors(folder: Path) -> dict[str, Any]:
    from safetensors import safe_open

    out: dict[str, Any] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                out[name] = f.get_tensor(name)
    return out


def compare_outputs(ours: Path, theirs: Path, config_text: str) -> str:
    """'equal', or which tensors differ from mergekit's (random methods draw other masks)."""
    docs = _load_docs(config_text)
    methods = {d.get("merge_method") for d in docs if isinstance(d, dict)}
    if methods & set(RANDOM):
        return "not compared (random method: mergekit draws its masks from a global RNG)"
    a, b = _tensors(ours), _tensors(theirs)
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        return f"tensor names differ ({len(only)}: {only[0]})"
    bad = [n for n in sorted(a) if a[n].dtype != b[n].dtype or a[n].shape != b[n].shape or not a[n].equal(b[n])]
    if not bad:
        return f"equal ({len(a)} tensors)"
    embed = all("embed_tokens" in n or "lm_head" in n for n in bad)
    return f"differ: {len(bad)}/{len(a)} tensors ({bad[0]})" + (" (embeddings only)" if embed else "")


def classify(row: Row) -> str:
    ok = row.plan_ok and row.build_ok is not False
    if ok:
        return "pass" if not row.mergekit or row.mergekit == "ok" else "pass (mergekit refuses)"
    if not row.mergekit:
        return "fail"
    return "ours only" if row.mergekit == "ok" else "mergekit refuses too"


def print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="published mergekit configs on stand-ins")
    for col in ("config", "models", "layers", "plan", "build", "verdict", "error / mergekit"):
        table.add_column(col, overflow="fold")
    for r in rows:
        mk = f" | mergekit: {r.mergekit}" if r.mergekit and r.mergekit != "ok" else ""
        mk += f" | bytes: {r.bytes}" if r.bytes else ""
        table.add_row(
            r.config, str(r.models), str(r.layers), "ok" if r.plan_ok else "FAIL",
            "-" if r.build_ok is None else ("ok" if r.build_ok else "FAIL"), classify(r), (r.error + mk)[:400],
        )
    Console(width=200).print(table)
    n = len(rows)
    plans = sum(r.plan_ok for r in rows)
    builds = sum(bool(r.build_ok) for r in rows)
    verdicts: dict[str, int] = {}
    for r in rows:
        verdicts[classify(r)] = verdicts.get(classify(r), 0) + 1
    compared = [r.bytes for r in rows if r.bytes and not r.bytes.startswith("not compared")]
    equal = sum(b.startswith("equal") for b in compared)
    print(f"{n} configs: plan ok {plans}/{n}, build ok {builds}/{n}; " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    if compared:
        print(f"bytes against mergekit 0.1.5: {equal}/{len(compared)} equal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--only", default="", help="comma-separated config stems")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--mergekit", action="store_true", help="classify failures with mergekit 0.1.5")
    ap.add_argument("--compare", action="store_true", help="run mergekit on every config; compare bytes")
    ap.add_argument("--oracle-venv", type=Path, default=ROOT / ".oracle-venv-mergekit")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--work", type=Path, help="keep stand-ins and outputs here (default: a temp folder)")
    args = ap.parse_args()
    configs = sorted(args.corpus.glob("*.yaml"))
    if args.only:
        wanted = set(args.only.split(","))
        configs = [c for c in configs if c.stem in wanted]
    args.mergekit = args.mergekit or args.compare
    if args.mergekit and not (args.oracle_venv / "bin" / "mergekit-yaml").exists():
        raise SystemExit(f"{args.oracle_venv}: no mergekit-yaml; run tests/oracle/regenerate.py first")
    work = args.work or Path(tempfile.mkdtemp(prefix="corpus-run-"))
    rows: list[Row] = []
    t0 = time.monotonic()
    try:
        for config in configs:
            case = work / config.stem
            shutil.rmtree(case, ignore_errors=True)
            case.mkdir(parents=True)
            text, count, layers, notes = stand_ins(config.read_text(), case / "parents")
            mapped = case / config.name
            mapped.write_text(text)
            row = Row(config.stem, count, layers, notes=notes)
            run_publisher(mapped, case / "out", not args.no_build, row, args.timeout)
            if args.compare or (args.mergekit and classify(row) != "pass"):
                run_mergekit(args.oracle_venv, mapped, case / "mergekit-out", row, args.timeout)
            if args.compare and row.build_ok and row.mergekit == "ok":
                row.bytes = compare_outputs(case / "out", case / "mergekit-out", text)
            rows.append(row)
            print(f"{config.stem}: {classify(row)} {row.error} {row.bytes}", file=sys.stderr, flush=True)
            if not args.work:
                shutil.rmtree(case, ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    print(f"wall {time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"verdict": classify(r)} for r in rows], indent=1))


if __name__ == "__main__":
    main()
