"""Where a streaming release spends its time: per-thread CPU and a sampled state timeline.

    flock /tmp/bench.lock python3 benchmarks/stream_profile.py [--layers 2] [--shard 500MB]

The same 7B-width SLERP + fp8-dynamic as ``stream_release.py``, on a local Hub served by this
process; the release (``publisher build --publish``) runs in a child process that samples every
thread's stack every 20 ms (``sys._current_frames``): each sample is labelled with the innermost
``publisher`` function on the stack and whether the thread is waiting (a lock or condition),
in socket I/O, or computing. The child also reads each thread's CPU time from
``/proc/self/task``. Printed: per thread, CPU seconds and the share of wall time in each state;
the server's CPU over the same run (this process's rusage delta); and the floors (read alone,
upload alone) for comparison. Everything under ``--work`` is deleted at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

TICK = os.sysconf("SC_CLK_TCK")
WAIT_FILES = ("threading.py", "queue.py", "concurrent/futures")
IO_FILES = ("httpx", "httpcore", "socket.py", "ssl.py", "h11", "anyio")


def _label(frame: FrameType | None) -> str:
    inner = frame.f_code.co_filename if frame else ""
    state = "wait" if any(w in inner for w in WAIT_FILES) else "io" if any(w in inner for w in IO_FILES) else "cpu"
    where = "?"
    f = frame
    while f is not None:
        path = f.f_code.co_filename
        if "/publisher/" in path and "/benchmarks/" not in path:
            where = f"{Path(path).stem}.{f.f_code.co_name}"
            break
        f = f.f_back
    if where == "?" and frame is not None:
        where = f"{Path(inner).stem}.{frame.f_code.co_name}"
    return f"{state:4} {where}"


def _thread_cpu() -> dict[int, float]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def client(argv: list[str], out: Path) -> int:
    """Run the CLI in this process while a thread samples every thread's stack."""
    from publisher.cli import main

    samples: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    cpu_by_name: dict[str, float] = {}
    names: dict[int, str] = {}
    stop = threading.Event()

    def sample() -> None:
        me = threading.get_ident()
        while not stop.is_set():
            frames = sys._current_frames()
            by_ident = {t.ident: t for t in threading.enumerate()}
            for ident, frame in frames.items():
                t = by_ident.get(ident)
                if ident == me or t is None:
                    continue
                name = t.name.rsplit("_", 1)[0] if t.name.startswith("merge") else t.name
                samples[name][_label(frame)] += 1
                if t.native_id is not None:
                    names[t.native_id] = name
            cpu = _thread_cpu()
            per: dict[str, float] = collections.defaultdict(float)
            for tid, secs in cpu.items():
                per[names.get(tid, "other")] += secs
            for name, secs in per.items():  # threads end: keep the last value seen, summed per name
                cpu_by_name[name] = max(cpu_by_name.get(name, 0.0), secs)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    t0, c0 = time.monotonic(), time.process_time()
    sampler.start()
    rc = main(argv)
    stop.set()
    sampler.join()
    out.write_text(json.dumps({
        "rc": rc, "wall": time.monotonic() - t0, "cpu": time.process_time() - c0,
        "threads": {n: {"cpu": cpu_by_name.get(n, 0.0), "samples": dict(c)} for n, c in samples.items()},
        "main_cpu": cpu_by_name.get("MainThread", 0.0),
    }))
    return rc


def report(data: dict, server_cpu: float) -> None:
    print(f"wall {data['wall']:.1f} s, client CPU {data['cpu']:.1f} s, server CPU {server_cpu:.1f} s")
    for name, t in sorted(data["threads"].items(), key=lambda kv: -kv[1]["cpu"]):
        total = sum(t["samples"].values())
        if total == 0:
            continue
        top = sorted(t["samples"].items(), key=lambda kv: -kv[1])[:6]
        shares = "; ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)
        print(f"  {name:18} CPU {t['cpu']:6.1f} s | {shares}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/stream-profile"))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--shard", default="500MB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--client", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client(args.client[1:], Path(args.client[0]))

    from hubseed import seed_repo
    from huggingface_hub import HfApi
    from stream_release import READ_ALL, RECIPE

    from publisher.commands.common import parse_size
    from publisher.hub.server import LocalHub
    from publisher.standins import SEVEN_B, Recipe, generate_model, with_layers

    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        shape = with_layers(SEVEN_B, args.layers)
        folders = {repo: generate_model(work / "parents" / repo.split("/")[1], shape, recipe=Recipe(seed=seed),
                                        max_shard_bytes=5_000_000_000)
                   for repo, seed in (("bench/parent-a", 1), ("bench/parent-b", 2))}
        with LocalHub(work / "hub") as server:
            token = server.create_token("bench", "write")
            api = HfApi(endpoint=server.url, token=token)
            for repo, folder in folders.items():
                seed_repo(server, api, repo, folder)
            home = work / "client"
            (home / "tmp").mkdir(parents=True)
            env = dict(os.environ, HF_ENDPOINT=server.url, HF_TOKEN=token, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                       HF_HOME=str(home / "hf-home"), TMPDIR=str(home / "tmp"), PUBLISHER_CACHE=str(home / "pcache"))
            t0, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
            subprocess.run([sys.executable, "-c", READ_ALL, server.url, token, *folders], env=env, check=True,
                           capture_output=True)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            read_wall, read_server = time.monotonic() - t0, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
            (work / "r.yaml").write_text(RECIPE.format(name="bench/streamed", layers=args.layers))
            out = work / "profile.json"
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            subprocess.run([sys.executable, __file__, "--client", str(out), "build", str(work / "r.yaml"), "--out",
                            str(home / "build"), "--quiet", "--no-measure", "--max-shard-size", str(parse_size(args.shard)),
                            "--threads", str(args.threads), "--publish"], env=env, check=True)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            server_cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
            data = json.loads(out.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.layers} layers of 7B width, --max-shard-size {args.shard}, load {os.getloadavg()[0]:.1f}")
    print(f"read alone: {read_wall:.1f} s wall, server CPU {read_server:.1f} s")
    report(data, server_cpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
