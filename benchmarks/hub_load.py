"""Load on the local Hub: N clients downloading and M uploading for a while, over loopback.

    PYTHONPATH=. python3 benchmarks/hub_load.py --seconds 60 --downloaders 32 --uploaders 4

The server runs in its own process (as ``publisher hub serve`` would), so its RSS and CPU
are its own. Downloaders (threads spread over a few processes, keep-alive connections) mix
HEAD+GET of small files with full GETs of a 16 MiB LFS file; uploaders push new 1 MiB
LFS files with the real huggingface_hub client (preupload, batch, PUT, verify, commit).
Prints requests/s, MB/s, p50/p99 latency per kind, errors, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # read by huggingface_hub at import
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["config.json", "tokenizer.json", "README.md"]
BIG = "model.safetensors"
BIG_SIZE = 16 << 20


def _download_worker(url: str, seconds: float, threads: int, out: mp.Queue) -> None:
    host = urlparse(url)
    stop_at = time.time() + seconds
    results: list[tuple[str, float, int, bool]] = []
    lock = threading.Lock()

    def loop() -> None:
        conn = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=60)
        local = []
        while time.time() < stop_at:
            big = random.random() < 0.5
            path = f"/bench/data/resolve/main/{BIG if big else random.choice(SMALL)}"
            t0 = time.perf_counter()
            try:
                if not big:
                    conn.request("HEAD", path)
                    r = conn.getresponse()
                    r.read()
                    ok = r.status == 200 and bool(r.getheader("X-Repo-Commit"))
                    local.append(("head", time.perf_counter() - t0, 0, ok))
                    t0 = time.perf_counter()
                conn.request("GET", path)
                r = conn.getresponse()
                n = 0
                while chunk := r.read(1 << 20):
                    n += len(chunk)
                ok = r.status == 200 and n == int(r.getheader("Content-Length") or -1)
                local.append(("get-16MiB" if big else "get-small", time.perf_counter() - t0, n, ok))
            except (OSError, http.client.HTTPException):
                local.append(("error", time.perf_counter() - t0, 0, False))
                conn.close()
                conn = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=60)
        with lock:
            results.extend(local)

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(results)


def _upload_worker(url: str, token: str, seconds: float, uploaders: int, out: mp.Queue) -> None:
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from huggingface_hub import HfApi

    api = HfApi(endpoint=url, token=token)
    stop_at = time.time() + seconds
    results: list[tuple[str, float, int, bool]] = []
    lock = threading.Lock()

    def loop(i: int) -> None:
        repo = f"bench/up{i % 2}"  # two uploaders per repo: commits to one branch interleave
        local = []
        n = 0
        while time.time() < stop_at:
            data = os.urandom(1 << 20)
            t0 = time.perf_counter()
            try:
                api.upload_file(path_or_fileobj=data, path_in_repo=f"u{i}/f{n}.bin", repo_id=repo)
                local.append(("upload-1MiB", time.perf_counter() - t0, len(data), True))
            except Exception:
                local.append(("error", time.perf_counter() - t0, 0, False))
            n += 1
        with lock:
            results.extend(local)

    ts = [threading.Thread(target=loop, args=(i,)) for i in range(uploaders)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--downloaders", type=int, default=32)
    ap.add_argument("--uploaders", type=int, default=4)
    ap.add_argument("--processes", type=int, default=4, help="client processes for the downloaders")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from huggingface_hub import HfApi

    from publisher.hub.server.auth import TokenStore

    tmp = Path(tempfile.mkdtemp(prefix="hub-load-"))
    root = tmp / "root"
    token = TokenStore(root).create("bench")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-m", "publisher.hub.server", "--root", str(root)],
                              env=env, stdout=subprocess.PIPE)
    assert server.stdout is not None
    url = server.stdout.readline().decode().split()[-1]
    proc = psutil.Process(server.pid)
    try:
        api = HfApi(endpoint=url, token=token)
        for name in ("data", "up0", "up1"):
            api.create_repo(f"bench/{name}")
        data = tmp / "data"
        data.mkdir()
        (data / BIG).write_bytes(os.urandom(BIG_SIZE))
        (data / "config.json").write_text(json.dumps({"model_type": "mistral", "hidden_size": 16}))
        (data / "tokenizer.json").write_text(json.dumps({"vocab": {f"w{i}": i for i in range(2000)}}))
        (data / "README.md").write_text("---\nlicense: mit\n---\n# bench\n")
        api.upload_folder(folder_path=data, repo_id="bench/data")
        rss_start = proc.memory_info().rss

        queue: mp.Queue = mp.Queue()
        per = [args.downloaders // args.processes + (i < args.downloaders % args.processes) for i in range(args.processes)]
        workers = [mp.Process(target=_download_worker, args=(url, args.seconds, n, queue)) for n in per if n]
        if args.uploaders:
            workers.append(mp.Process(target=_upload_worker, args=(url, token, args.seconds, args.uploaders, queue)))
        peak = rss_start
        cpu0 = proc.cpu_times()
        t0 = time.time()
        for w in workers:
            w.start()
        results: list[tuple[str, float, int, bool]] = []
        pending = len(workers)
        while pending:
            try:
                results.extend(queue.get(timeout=0.5))
                pending -= 1
            except Exception:
                pass
            peak = max(peak, sum(p.memory_info().rss for p in [proc]))
        for w in workers:
            w.join()
        wall = time.time() - t0
        cpu1 = proc.cpu_times()
    finally:
        server.terminate()
        server.wait()

    print(f"local Hub load: {args.downloaders} downloaders + {args.uploaders} uploaders, {wall:.0f} s, "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    kinds = sorted({k for k, *_ in results})
    total_bytes = sum(n for _, _, n, ok in results if ok)
    errors = sum(1 for *_, ok in results if not ok)
    print(f"{'kind':<12} {'count':>7} {'req/s':>8} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for k in kinds:
        rows = [r for r in results if r[0] == k]
        lat = sorted(r[1] for r in rows)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        mb = sum(r[2] for r in rows if r[3]) / wall / 1e6
        print(f"{k:<12} {len(rows):>7} {len(rows) / wall:>8.1f} {mb:>8.1f} {statistics.median(lat) * 1e3:>8.1f} {p99 * 1e3:>8.1f}")
    print(f"total: {len(results) / wall:.1f} req/s, {total_bytes / wall / 1e6:.1f} MB/s, errors: {errors}")
    print(f"server RSS: {rss_start / 2**20:.0f} MiB at start, {peak / 2**20:.0f} MiB peak; "
          f"server CPU: {(cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100:.0f}% of one core")


if __name__ == "__main__":
    main()
