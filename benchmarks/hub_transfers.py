"""Large-file transfers with the local Hub: Xet vs classic LFS uploads, downloads, git + git-lfs.

    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python benchmarks/hub_transfers.py --mib 1024

The server runs in its own process (``python -m publisher.hub.server``-style, as ``publisher
hub serve``) on a root under ``--work`` (default /work/bench-data/hub-transfers, removed at
the end). Each client step is a fresh process with the environment a user would have:
``upload_file`` with hf_xet (the default), the same file again into a second repo (hf_xet's
own deduplication: no xorb is sent), ``upload_file`` with ``HF_HUB_DISABLE_XET=1`` (classic
LFS), ``hf_hub_download``, and ``git clone`` + ``git lfs pull``. Prints seconds and MB/s per
step and the bytes the server stored for each path.
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
SERVER = """
import sys, time
from publisher.hub.server import LocalHub
hub = LocalHub(sys.argv[1]).start()
token = hub.create_token("alice")
print(hub.url, token, flush=True)
while True:
    time.sleep(1)
"""
UPLOAD = """
import sys
from huggingface_hub import HfApi
url, token, repo, path = sys.argv[1:5]
api = HfApi(endpoint=url, token=token)
api.create_repo(repo, exist_ok=True)
api.upload_file(path_or_fileobj=path, path_in_repo="big.bin", repo_id=repo)
"""
DOWNLOAD = """
import sys
from huggingface_hub import hf_hub_download
url, token, repo, cache = sys.argv[1:5]
hf_hub_download(repo, "big.bin", endpoint=url, token=token, cache_dir=cache)
"""


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _timed(label: str, args: list[str], env: dict[str, str], size: int, cwd: Path | None = None) -> None:
    start = time.perf_counter()
    run = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{label} failed: {run.stderr[-2000:]}")
    rate = f"{size / took / 1e6:8.1f} MB/s" if size else ""
    print(f"{label:<50} {took:7.2f} s  {rate}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/hub-transfers"))
    opts = ap.parse_args()
    work: Path = opts.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    size = opts.mib << 20
    big = work / "big.bin"
    with open(big, "wb") as f:  # incompressible, as model weights nearly are
        for _ in range(opts.mib):
            f.write(os.urandom(1 << 20))
    py = sys.executable
    base_env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE")}
    base_env.update(PYTHONPATH=str(ROOT), HF_HOME=str(work / "hf-home"), HF_HUB_DISABLE_PROGRESS_BARS="1",
                    HF_HUB_DISABLE_TELEMETRY="1")
    server = subprocess.Popen([py, "-c", SERVER, str(work / "root")], stdout=subprocess.PIPE, text=True, env=base_env)
    try:
        assert server.stdout is not None
        url, token = server.stdout.readline().split()
        print(f"{opts.mib} MiB of random bytes, server {url}")
        lfs_env = dict(base_env, HF_HUB_DISABLE_XET="1")
        _timed("upload_file, Xet (default client)", [py, "-c", UPLOAD, url, token, "alice/xet", str(big)], base_env, size)
        xet_bytes = _du(work / "root" / "xet")
        _timed("upload_file, Xet, same bytes to a new repo", [py, "-c", UPLOAD, url, token, "alice/xet-again", str(big)], base_env, size)
        _timed("upload_file, classic LFS (HF_HUB_DISABLE_XET=1)", [py, "-c", UPLOAD, url, token, "alice/lfs", str(big)], lfs_env, size)
        _timed("hf_hub_download (default client)", [py, "-c", DOWNLOAD, url, token, "alice/xet", str(work / "cache")], base_env, size)
        git_env = dict(base_env, HOME=str(work / "home"), GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
        (work / "home").mkdir()
        _timed("git clone (LFS pointers only)", ["git", "clone", "-q", f"{url}/alice/xet", str(work / "clone")], git_env, 0)
        if shutil.which("git-lfs"):
            subprocess.run(["git", "lfs", "install", "--local"], cwd=work / "clone", env=git_env, check=True, capture_output=True)
            _timed("git lfs pull", ["git", "lfs", "pull"], git_env, size, cwd=work / "clone")
        print(f"server storage: xorbs {xet_bytes / 1e6:.0f} MB after the first Xet upload, "
              f"{_du(work / 'root' / 'xet') / 1e6:.0f} MB at the end; LFS objects {_du(work / 'root' / 'lfs') / 1e6:.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
