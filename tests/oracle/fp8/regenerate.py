"""Regenerate the FP8 reference fixtures from llm-compressor itself.

    python3 tests/oracle/fp8/regenerate.py            (from the repository root)

1. Makes (once) a side venv ``.oracle-venv-fp8`` with torch 2.13.0 installed first, then
   llmcompressor 0.14.0.1 (which pins compressed-tensors 0.19.0 and transformers <= 5.17, so it
   cannot share the global environment).
2. Writes small bf16/fp16 Mistral inputs with ``publisher.standins`` (plus hand-made edge
   cases) under ``tests/fixtures/fp8/<case>/input``.
3. Runs llm-compressor's ``oneshot`` (FP8_DYNAMIC, FP8_BLOCK) on each, offline, and keeps
   its ``config.json``, ``model.safetensors`` and ``recipe.yaml`` under
   ``tests/fixtures/fp8/<case>/<SCHEME>``.

The test suite only reads these files; it never needs llmcompressor.

Regenerated on 2026-12-01 (issue 16 suspected hand-edited configs): every file came out byte
for byte as committed. The configs are llm-compressor's own: the transformers it pins (5.17.0)
writes no ``transformers_version`` and keeps the input's ``rope_theta``. tests/quantize compares
our whole config.json with them, field for field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from publisher.standins import MistralShape, Recipe, generate_model  # noqa: E402
from publisher.tensors import ModelFiles, TensorReader  # noqa: E402

VENV = ROOT / ".oracle-venv-fp8"
FIXTURES = ROOT / "tests" / "fixtures" / "fp8"
HERE = Path(__file__).resolve().parent
LLMC = "llmcompressor==0.14.0.1"
TORCH = "torch==2.13.0"

SHAPES = {
    # dims all multiples of 128 except the k/v projections (64 rows)
    "tiny": MistralShape(hidden=128, intermediate=256, layers=2, heads=4, kv_heads=2, vocab=128),
    # nothing a multiple of 128: FP8_BLOCK pads its absmax blocks
    "odd": MistralShape(hidden=192, intermediate=320, layers=1, heads=3, kv_heads=1, vocab=96),
    "edge": MistralShape(hidden=128, intermediate=256, layers=1, heads=4, kv_heads=2, vocab=64),
    "tiny16": MistralShape(hidden=128, intermediate=256, layers=1, heads=4, kv_heads=2, vocab=64),
}
# (case, llm-compressor scheme, extra ignore entries, output folder name)
JOBS: list[tuple[str, str, list[str], str]] = [
    ("tiny", "FP8_DYNAMIC", [], "FP8_DYNAMIC"),
    ("tiny", "FP8_BLOCK", [], "FP8_BLOCK"),
    ("tiny", "FP8_DYNAMIC", [r"re:.*layers\.0\.mlp\..*", "model.layers.1.self_attn.o_proj"], "FP8_DYNAMIC_ignore"),
    ("odd", "FP8_DYNAMIC", [], "FP8_DYNAMIC"),
    ("odd", "FP8_BLOCK", [], "FP8_BLOCK"),
    ("edge", "FP8_DYNAMIC", [], "FP8_DYNAMIC"),
    ("edge", "FP8_BLOCK", [], "FP8_BLOCK"),
    ("tiny16", "FP8_DYNAMIC", [], "FP8_DYNAMIC"),
]


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run([python, "-c", "import llmcompressor"], capture_output=True)
        if probe.returncode == 0:
            return python
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    # torch first: an unpinned resolve would pull a multi-GB CUDA build.
    subprocess.run([python, "-m", "pip", "install", "-q", TORCH], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", LLMC], check=True)
    return python


def edge_values(folder: Path) -> None:
    """Rewrite layer 0 of a stand-in with the cases that break naive FP8 code."""
    files = ModelFiles.open(folder)
    with TensorReader() as reader:
        tensors = {name: reader.read(info).clone() for name, info in files.tensors.items()}
    p = "model.layers.0"
    q = tensors[f"{p}.self_attn.q_proj.weight"]
    q[3] = 0.0  # all-zero row: scale must become eps
    q[4, ::3] = -0.0  # negative zeros among normal values: stored as +0 (0x00)
    k = tensors[f"{p}.self_attn.k_proj.weight"]
    k[5] = -0.0  # a row of negative zeros
    v = tensors[f"{p}.self_attn.v_proj.weight"]
    v[2] = 1e-6
    v[2, ::2] = -1e-6
    v[2, 7] = 0.02  # tiny values next to a normal one; some underflow to ±0 in FP8
    v[2, 9] = -1e-40  # bf16 subnormal
    o = tensors[f"{p}.self_attn.o_proj.weight"]
    o[0, 5] = 50.0  # outlier: that row's others collapse towards zero
    o[1, 0] = -50.0
    gate = tensors[f"{p}.mlp.gate_proj.weight"]
    gate[128:256, 0:128] = 0.0  # a whole zero 128x128 block
    up = tensors[f"{p}.mlp.up_proj.weight"]
    up[1] = 0.01  # constant row
    down = tensors[f"{p}.mlp.down_proj.weight"]
    down[7] = 1e-30  # tiny row: scale is a tiny normal number
    down[8] = 0.0
    down[8, 3] = 1e-39  # absmax/448 underflows to 0 in bf16: scale becomes eps
    from safetensors.torch import save_file

    for path in files.files:
        path.unlink()
    index = folder / "model.safetensors.index.json"
    index.unlink(missing_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def make_inputs() -> None:
    for case, shape in SHAPES.items():
        dest = FIXTURES / case / "input"
        if dest.exists():
            shutil.rmtree(dest)
        dtype = "F16" if case == "tiny16" else "BF16"
        generate_model(dest, shape, recipe=Recipe(seed=4242 + len(case)), dtype=dtype, tokenizer=False)
        if case == "edge":
            edge_values(dest)


def run_llmc(python: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="fp8-oracle-") as tmp:
        jobs = []
        for case, scheme, extra, folder in JOBS:
            cfg = json.loads((FIXTURES / case / "input" / "config.json").read_text())
            jobs.append(
                {
                    "input": str(FIXTURES / case / "input"),
                    "output": str(Path(tmp) / case / folder),
                    "scheme": scheme,
                    "ignore": ["lm_head", *extra],
                    "dtype": cfg["dtype"],
                }
            )
        jobs_file = Path(tmp) / "jobs.json"
        jobs_file.write_text(json.dumps(jobs))
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
        env.pop("PYTHONPATH", None)
        subprocess.run([python, HERE / "llmc_run.py", jobs_file], check=True, env=env)
        for job, (case, _scheme, _extra, folder) in zip(jobs, JOBS, strict=True):
            dest = FIXTURES / case / folder
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for name in ("config.json", "model.safetensors", "recipe.yaml"):
                shutil.copyfile(Path(job["output"]) / name, dest / name)
            (dest / "job.json").write_text(json.dumps({"scheme": job["scheme"], "ignore": job["ignore"]}, indent=2) + "\n")


def record_versions(python: Path) -> None:
    out = subprocess.run(
        [python, "-c", "import importlib.metadata as m;import json;print(json.dumps({p: m.version(p) for p in "
         "['llmcompressor','compressed-tensors','transformers','torch']}))"],
        capture_output=True, text=True, check=True,
    ).stdout
    (FIXTURES / "versions.json").write_text(json.dumps(json.loads(out), indent=2, sort_keys=True) + "\n")


def main() -> None:
    torch.manual_seed(0)
    python = ensure_venv()
    make_inputs()
    run_llmc(python)
    record_versions(python)
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB under {FIXTURES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
