"""When each stage of a streaming release happens: the first shard, every upload, the commits.

    flock /tmp/bench.lock python3 benchmarks/stream_timeline.py [--layers 2] [--shard 250MB] [--rate 60MB/30MB]

The same 7B-width SLERP + fp8-dynamic as ``stream_release.py`` on a local Hub served by this
process with the given bandwidth limits; the release (``publisher build --publish``) runs in a
child process whose stages are wrapped to print a timestamped line each: parents resolved,
engine started, the first Range reads, each shard finished, each upload's start and end (with
the bytes on disk then), time spent waiting for disk room, the merge's end, each commit. What
the gap between the release's wall time and the upload floor is made of can be read off it:
the time before the first upload starts, the upload rate while the merge runs, the end.
Everything under ``--work`` is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

CHILD = r'''
import sys, threading, time
T0 = time.monotonic()
def log(msg):
    sys.stderr.write(f"@{time.monotonic() - T0:8.2f} [{threading.current_thread().name}] {msg}\n")
import huggingface_hub.hf_api as hf_api
import publisher.build as build
import publisher.hub.ranged as ranged
import publisher.merge.engine as engine
from publisher.hub import stream_upload

def around(owner, name, label, show=lambda *a: ""):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        log(f"{label} start {show(*args)}")
        result = original(*args, **kwargs)
        log(f"{label} end {show(*args)}")
        return result
    setattr(owner, name, wrapped)

for fn in ("resolve_models", "open_ends"):
    around(build, fn, fn)
around(engine.Engine, "run", "engine")
around(stream_upload.HubShardSink, "_upload", "upload",
       lambda self, s: f"{s.key} {s.digest.size / 1e6:.0f} MB, on disk {self._on_disk / 1e6:.0f} MB")
around(stream_upload.HubShardSink, "finish", "last uploads", lambda self: f"queued {self._queue.qsize()}")
around(hf_api.HfApi, "create_commit", "commit", lambda self, repo, *a, **k: repo)
done = stream_upload.HubShardSink.shard_done
def shard_done(self, shard):
    log(f"shard whole {shard.key}")
    done(self, shard)
stream_upload.HubShardSink.shard_done = shard_done
reserve = stream_upload.HubShardSink.reserve
def waited(self, n):
    t = time.monotonic()
    reserve(self, n)
    if time.monotonic() - t > 0.05:
        log(f"waited {time.monotonic() - t:.2f} s for disk room")
stream_upload.HubShardSink.reserve = waited
read_into, reads = ranged.RangeClient.read_into, [0]
def first_reads(self, url, headers, start, length, views):
    reads[0] += 1
    if reads[0] <= 8 and length > 1 << 20:
        log(f"range read {length / 1e6:.0f} MB at {start}")
    return read_into(self, url, headers, start, length, views)
ranged.RangeClient.read_into = first_reads
import atexit
atexit.register(lambda: log("exit"))
from publisher.cli import run
run()
'''


def main() -> int:
    from hubseed import make_parent_pair, seed_repo
    from huggingface_hub import HfApi
    from stream_release import RECIPE, parse_rate

    from publisher.hub.server import LocalHub
    from publisher.hub.server.throttle import Limits
    from publisher.standins import SEVEN_B, with_layers

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/stream-timeline"))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--shard", default="250MB")
    ap.add_argument("--rate", default="60MB/30MB", help="the local Hub's DOWN/UP limits, or 'none'")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    try:
        folders = make_parent_pair(args.work / "parents", with_layers(SEVEN_B, args.layers))
        with LocalHub(args.work / "hub") as server:
            token = server.create_token("bench", "write")
            api = HfApi(endpoint=server.url, token=token)
            for repo, folder in folders.items():
                seed_repo(server, api, repo, folder)
            server.app.limits = Limits.rates(*parse_rate(args.rate))
            recipe = args.work / "recipe.yaml"
            recipe.write_text(RECIPE.format(name="bench/timeline", layers=args.layers))
            home = args.work / "client"
            (home / "tmp").mkdir(parents=True)
            env = dict(os.environ, HF_ENDPOINT=server.url, HF_TOKEN=token, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                       HF_HOME=str(home / "hf-home"), TMPDIR=str(home / "tmp"), PUBLISHER_CACHE=str(home / "pcache"))
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-c", CHILD, "build", str(recipe), "--out", str(home / "build"), "--quiet",
                            "--no-measure", "--max-shard-size", args.shard, "--threads", "2", "--publish"], env=env, check=True)
            print(f"wall {time.monotonic() - t0:.1f} s ({args.layers} layers, {args.shard} shards, {args.rate})")
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
