"""Regenerate the mergekit reference fixtures (tests/fixtures/mergekit/).

Run from the repository root with the global python:

    python3 tests/oracle/regenerate.py [--cases slerp_scalar,ties_scalar] [--keep-venv]

It creates (or reuses) a side virtual environment ``.oracle-venv-mergekit`` holding
torch 2.13.0 (installed first: the local CPU build) and mergekit 0.1.5, generates the tiny
32-layer stand-in family (bf16, and a float32 copy) with publisher.standins, runs
``mergekit-yaml`` on every case of tests/oracle/cases.py (CPU, offline), and stores for
each case its config.yml (with placeholder paths), the output model.safetensors and the
output config.json. family.json records the sha256 of every parent, so a change to the
stand-ins invalidates the references loudly instead of silently.

The test suite never needs mergekit: it only reads what this script wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import BF16, CASES, F32, LEGACY_CASES, LORA, VOCAB, WIDE, resolve_paths  # noqa: E402

from publisher.standins import TINY, WIDE_SHARD_BYTES, generate_family  # noqa: E402
from publisher.standins import WIDE as WIDE_SHAPE  # noqa: E402
from publisher.standins_lora import generate_adapters  # noqa: E402
from publisher.standins_vocab import generate_vocab_family  # noqa: E402
from publisher.tensors import read_header  # noqa: E402

VENV = ROOT / ".oracle-venv-mergekit"
FIXTURES = ROOT / "tests" / "fixtures" / "mergekit"
TORCH = "torch==2.13.0"
MERGEKIT = "mergekit==0.1.5"
# mergekit v0.0.3.2 (LEGACY_CASES): its own pins, transformers of its time; installed from a
# source tree (`git archive v0.0.3.2` of mergekit's repository) and run from it with PYTHONPATH,
# as its wheel leaves out the mergekit.scripts package.
LEGACY_VENV = ROOT / ".oracle-venv-mergekit-0032"
LEGACY_DEPS = (
    "transformers==4.36.2", "safetensors==0.4.1", "accelerate==0.25.0", "pydantic==2.5.3",
    "tqdm==4.66.1", "click==8.1.7", "peft==0.7.1", "huggingface_hub", "sentencepiece", "protobuf",
)  # fmt: skip
KEEP = ("config.json",)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    check = subprocess.run([str(py), "-c", "import mergekit, torch"], capture_output=True)
    if check.returncode != 0:
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)  # first: the local CPU wheel
        subprocess.run([*pip, MERGEKIT], check=True)
    return VENV / "bin" / "mergekit-yaml"


def ensure_legacy_venv(src: Path) -> list[str]:
    """The command that runs mergekit v0.0.3.2 from ``src`` (its source tree)."""
    if not (src / "mergekit" / "scripts" / "run_yaml.py").is_file():
        raise SystemExit(f"{src}: not a mergekit source tree (git archive v0.0.3.2 | tar -x -C DIR)")
    py = LEGACY_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LEGACY_VENV)], check=True)
    check = subprocess.run([str(py), "-c", "import torch, transformers, accelerate"], capture_output=True)
    if check.returncode != 0:
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, *LEGACY_DEPS], check=True)
    return ["env", f"PYTHONPATH={src.resolve()}", str(py), "-m", "mergekit.scripts.run_yaml"]


def versions() -> dict[str, str]:
    py = VENV / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('mergekit'), m.version('torch'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {"mergekit": out[0], "torch": out[1]}


def family_digests(families: dict[str, Path]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, root in families.items():
        out[key] = {m.name: weights_digest(m) for m in sorted(root.iterdir())}
    return out


def weights_digest(model: Path) -> str:
    """sha256 of the one weights file, or of the shards' digests in order for a sharded model."""
    shards = sorted(model.glob("*.safetensors"))
    if len(shards) == 1:
        return sha256(shards[0])
    return hashlib.sha256("".join(f"{s.name}:{sha256(s)}\n" for s in shards).encode()).hexdigest()


def tensor_digests(shard: Path) -> dict[str, dict[str, object]]:
    """Per tensor: dtype, shape and sha256 of its bytes (what a bitwise comparison needs)."""
    infos, _ = read_header(shard)
    out: dict[str, dict[str, object]] = {}
    with shard.open("rb") as f:
        for name, info in sorted(infos.items()):
            f.seek(info.offset)
            data = f.read(info.nbytes)
            out[name] = {"dtype": info.dtype, "shape": list(info.shape), "sha256": hashlib.sha256(data).hexdigest()}
    return out


def make_families(work: Path) -> dict[str, Path]:
    fams = {BF16: work / "family-bf16", F32: work / "family-f32", WIDE: work / "family-wide"}
    generate_family(fams[BF16], TINY, dtype="BF16")
    generate_family(fams[F32], TINY, dtype="F32")
    generate_family(fams[WIDE], WIDE_SHAPE, dtype="BF16", finetunes=2, max_shard_bytes=WIDE_SHARD_BYTES)
    fams[LORA] = work / "family-lora"
    generate_adapters(fams[LORA], TINY)
    fams[VOCAB] = work / "family-vocab"
    generate_vocab_family(fams[VOCAB], TINY)
    return fams


def run_case(name: str, config: dict[str, object], fams: dict[str, Path], mergekit_yaml: Path | list[str], work: Path) -> None:
    resolved = resolve_paths(config, {k: str(v) for k, v in fams.items()})
    cfg_path = work / f"{name}.yml"
    cfg_path.write_text(yaml.safe_dump(resolved, sort_keys=False))
    out = work / f"out-{name}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TRANSFORMERS_OFFLINE="1")
    legacy = isinstance(mergekit_yaml, list)
    cmd = [*mergekit_yaml] if legacy else [str(mergekit_yaml)]
    cmd += [str(cfg_path), str(out), "--no-cuda", "--no-write-model-card", "--no-copy-tokenizer"]
    cmd += [] if legacy else ["--quiet"]  # v0.0.3.2 has no --quiet
    cmd += ["--lora-merge-cache", str(work / "lora-cache")]  # mergekit merges adapters into a copy first
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mergekit failed on {name}:\n{proc.stderr[-4000:]}")
    shards = sorted(out.glob("*.safetensors"))
    if len(shards) != 1:
        raise SystemExit(f"{name}: expected one output shard, got {[s.name for s in shards]}")
    dest = FIXTURES / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    if WIDE + "/" in json.dumps(config):
        (dest / "digests.json").write_text(json.dumps(tensor_digests(shards[0]), indent=1, sort_keys=True) + "\n")
    else:
        shutil.copyfile(shards[0], dest / "model.safetensors")
    for keep in KEEP:
        shutil.copyfile(out / keep, dest / keep)
    if (out / "tokenizer.json").is_file() and "tokenizer" in json.dumps(config):
        shutil.copyfile(out / "tokenizer.json", dest / "tokenizer.json")  # rows are compared by token
    shutil.rmtree(out)
    print(f"{name}: {sum(f.stat().st_size for f in dest.iterdir()) // 1024} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument(
        "--legacy-src", type=Path, help="mergekit v0.0.3.2's source tree: regenerate LEGACY_CASES with it (only them)"
    )
    args = parser.parse_args()
    table = LEGACY_CASES if args.legacy_src else CASES
    names = args.cases.split(",") if args.cases else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown cases: {unknown}")
    if args.legacy_src:
        with tempfile.TemporaryDirectory(prefix="mergekit-oracle-legacy-") as tmp:
            fams = make_families(Path(tmp))
            meta = json.loads((FIXTURES / "family.json").read_text())
            if family_digests(fams) != meta["family"]:
                raise SystemExit("the stand-ins changed: regenerate the 0.1.5 cases first")
            cmd = ensure_legacy_venv(args.legacy_src)
            for name in names:
                run_case(name, LEGACY_CASES[name], fams, cmd, Path(tmp))
        return
    mergekit_yaml = ensure_venv()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mergekit-oracle-") as tmp:
        work = Path(tmp)
        fams = make_families(work)
        meta = {"versions": versions(), "family": family_digests(fams)}
        (FIXTURES / "family.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if not args.cases:  # a full run drops fixtures of cases that no longer exist
            for stale in FIXTURES.iterdir():
                if stale.is_dir() and stale.name not in CASES and stale.name not in LEGACY_CASES:
                    shutil.rmtree(stale)
        for name in names:
            run_case(name, CASES[name], fams, mergekit_yaml, work)


if __name__ == "__main__":
    main()
