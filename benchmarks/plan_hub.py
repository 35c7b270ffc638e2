"""``publisher plan`` of a 7B-shaped pair on a local Hub: headers by Range requests, no weights.

    python3 benchmarks/plan_hub.py [--work /work/bench-data/plan-hub] [--runs 5]

Two 32-layer 7B-shaped parents (7.24 B params, 14.5 GB each in 3 shards) are put on a local Hub
served in this process. Their safetensors files have the real headers and true sizes, and their data
are sparse holes (plan never reads data; the files cost no disk). The real `publisher plan` runs in
its own process, timed; the server counts the bytes it sends per file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from hubseed import seed_repo  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402

from publisher.hub.ranged import write_header_copy  # noqa: E402
from publisher.hub.server import LocalHub  # noqa: E402
from publisher.standins import SEVEN_B, mistral_config, tensor_plan, write_tokenizer  # noqa: E402
from publisher.tensors import assign_shards, encode_header, shard_names, write_index  # noqa: E402

RECIPE = """\
name: bench/plan-7b
version: 1.0.0
merge:
  slices:
    - sources:
        - model: bench/parent-a
          layer_range: [0, 32]
        - model: bench/parent-b
          layer_range: [0, 32]
  merge_method: slerp
  base_model: bench/parent-a
  parameters:
    t:
      - filter: self_attn
        value: [0, 0.5, 0.3, 0.7, 1]
      - filter: mlp
        value: [1, 0.5, 0.7, 0.3, 0]
      - value: 0.5
  dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
card:
  license: apache-2.0
"""


def header_only_parent(out: Path) -> None:
    """A 7B-shaped model folder whose shards are real headers over holes of the true size."""
    out.mkdir(parents=True, exist_ok=True)
    planned = tensor_plan(SEVEN_B)
    shards = assign_shards(planned, 5_000_000_000)
    names = shard_names(len(shards))
    for shard, name in zip(shards, names, strict=True):
        header = encode_header(shard, {"format": "pt"})
        write_header_copy(out / name, header, len(header) + sum(t.nbytes for t in shard))
    write_index(out, shards, names, sum(t.nbytes // 2 for t in planned))
    (out / "config.json").write_text(json.dumps(mistral_config(SEVEN_B), indent=2) + "\n")
    write_tokenizer(out, SEVEN_B.vocab)
    (out / "README.md").write_text("---\nlicense: apache-2.0\n---\n# a 7B-shaped benchmark parent\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/plan-hub"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    try:
        with LocalHub(args.work / "hub") as server:
            token = server.create_token("bench", "write")
            api = HfApi(endpoint=server.url, token=token)
            size = 0
            for repo in ("bench/parent-a", "bench/parent-b"):
                folder = args.work / repo.replace("/", "--")
                header_only_parent(folder)
                size += sum(f.stat().st_size for f in folder.glob("*.safetensors"))
                seed_repo(server, api, repo, folder)
            recipe = args.work / "plan-7b.yaml"
            recipe.write_text(RECIPE)
            env = dict(os.environ, HF_ENDPOINT=server.url, HF_TOKEN=token, HF_HUB_OFFLINE="1",
                       HF_HOME=str(args.work / "hf-home"), PYTHONPATH=str(Path(__file__).resolve().parents[1]),
                       PYTHONPYCACHEPREFIX=str(args.work / "pycache"))
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed wheel has its bytecode: so does this run
            plan = [sys.executable, "-m", "publisher.cli", "plan", str(recipe)]
            subprocess.run(plan, env=env, capture_output=True, check=True)  # untimed: writes the bytecode
            walls = []
            for _ in range(args.runs):
                server.app.sent.clear()
                t0 = time.monotonic()
                done = subprocess.run(plan, env=env, capture_output=True, text=True)
                walls.append(time.monotonic() - t0)
                if done.returncode:
                    raise SystemExit(done.stderr)
            sent = dict(server.app.sent)
            weights = sum(n for p, n in sent.items() if p.endswith(".safetensors"))
            cached = sum(f.stat().st_size for f in (args.work / "hf-home").rglob("*") if f.is_file()) \
                if (args.work / "hf-home").exists() else 0
            print(done.stdout.strip().splitlines()[-1])
            print(f"parents: 2 x {size / 2e9:.2f} GB of safetensors on the local Hub ({server.url})")
            print(f"plan wall: {' / '.join(f'{w:.2f}' for w in walls)} s (median {sorted(walls)[len(walls) // 2]:.2f} s), "
                  f"whole process incl. interpreter start; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(f"bytes sent by the server for *.safetensors: {weights} ({weights / 1024:.1f} KiB) in "
                  f"{sum(1 for p in sent if p.endswith('.safetensors'))} files; other files: "
                  f"{sum(n for p, n in sent.items() if not p.endswith('.safetensors'))} bytes")
            print(f"Hugging Face cache after plan: {cached} bytes")
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
