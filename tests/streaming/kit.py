"""Stand-in parents published on a local Hub, recipes over them, and the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from huggingface_hub import CommitOperationAdd, HfApi, constants

from publisher.standins import MistralShape, Recipe, generate_model

constants.HF_HUB_DISABLE_XET = True

ROOT_DIR = Path(__file__).resolve().parents[2]
# Several shards per parent, each well past the 64 kB a careless first read would take.
SHAPE = MistralShape(hidden=64, intermediate=128, layers=4, heads=4, kv_heads=2, vocab=4096)
PARENTS = {"acme/base-a": 11, "acme/base-b": 12}

RECIPE = """\
name: {name}
version: 1.0.0
merge:
  slices:
    - sources:
        - model: {a}
          layer_range: [0, 4]
        - model: {b}
          layer_range: [0, 4]
  merge_method: slerp
  base_model: {a}
  parameters:
    t:
      - filter: self_attn
        value: [0, 0.5, 0.3, 0.7, 1]
      - value: 0.5
  dtype: bfloat16
{quantize}card:
  license: apache-2.0
  summary: A streamed merge of two stand-ins.
"""


def recipe_text(a: str, b: str, *, name: str = "alice/streamed", fp8: bool = True) -> str:
    quantize = "quantize:\n  - scheme: fp8-dynamic\n" if fp8 else ""
    return RECIPE.format(name=name, a=a, b=b, quantize=quantize)


def make_parents(root: Path, shard_bytes: int = 300_000) -> dict[str, Path]:
    out = {}
    for repo_id, seed in PARENTS.items():
        folder = root / repo_id.replace("/", "--")
        card = f"---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# {repo_id}\n\nA stand-in.\n"
        out[repo_id] = generate_model(folder, SHAPE, recipe=Recipe(seed=seed), max_shard_bytes=shard_bytes, card=card)
    return out


def publish_parents(api: HfApi, folders: dict[str, Path]) -> dict[str, str]:
    """Each folder as one commit of its repo; returns repo id → commit sha."""
    commits = {}
    for repo_id, folder in folders.items():
        api.create_repo(repo_id, exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=p) for p in sorted(folder.iterdir()) if p.is_file()]
        commits[repo_id] = api.create_commit(repo_id, ops, commit_message="stand-in").oid
    return commits


def cli(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT_DIR), COLUMNS="200", **env)
    return subprocess.run([sys.executable, "-m", "publisher.cli", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def disk_files(root: Path) -> dict[str, int]:
    """Every file under root with the bytes it really occupies (sparse holes count nothing)."""
    return {p.relative_to(root).as_posix(): p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file()}


T = TypeVar("T")


def wait_while_running(proc: subprocess.Popen[str], ready: Callable[[], T], seconds: float = 180) -> T:
    """``ready()`` polled until it is truthy, ``proc`` has ended, or ``seconds`` have passed; its last value."""
    deadline = time.monotonic() + seconds
    while not (value := ready()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return value
