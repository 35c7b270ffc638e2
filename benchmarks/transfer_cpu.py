"""CPU seconds per GB of the streaming release's two transfer paths, on a local Hub.

    python3 benchmarks/transfer_cpu.py [--mb 512] [--server-code DIR ...]

1. Client, Range reads (what ``range_reader`` does for every byte of both parents): 64 MB
   requests into 16 MB torch buffers, CPU of the reading thread only (``time.thread_time``;
   the server runs in this process but on other threads). ``RangeClient`` (http.client,
   ``readinto``) against the httpx loop it replaced (``iter_bytes(1 MB)`` + a copy per chunk).
2. Server, one LFS upload (what the Hub does with every shard): ``preupload_lfs_files`` of a
   file of ``--mb`` MB (multipart: 16 MB parts) to ``python -m publisher.hub.server`` run from
   each ``--server-code`` folder (default: this checkout), user and system CPU of the server
   process from ``/proc``. To compare with an older server: ``git archive COMMIT publisher |
   tar -x -C /tmp/old`` and pass ``--server-code /tmp/old --server-code .``.

Each measurement runs twice; both are printed (the machine is shared: take the lower).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_url  # noqa: E402

from publisher.hub.ranged import RangeClient  # noqa: E402
from publisher.hub.remote_source import request_headers, session  # noqa: E402
from publisher.hub.server import LocalHub  # noqa: E402
from publisher.hub.server.auth import TokenStore  # noqa: E402
from publisher.lazy import torch  # noqa: E402

REQUEST = 64 << 20
BUFFER = 16 << 20


def _views() -> list[memoryview]:
    return [memoryview(torch.empty(BUFFER, dtype=torch.uint8).numpy()).cast("B") for _ in range(REQUEST // BUFFER)]  # type: ignore[arg-type]


def read_httpx(url: str, headers: dict[str, str], size: int) -> None:
    client = session()
    for start in range(0, size, REQUEST):
        views = _views()
        with client.stream("GET", url, headers={**headers, "Range": f"bytes={start}-{start + REQUEST - 1}"},
                           follow_redirects=True, timeout=60) as r:
            k, pos = 0, 0
            for chunk in r.iter_bytes(1 << 20):
                mv = memoryview(chunk)
                while mv and k < len(views):
                    n = min(len(mv), len(views[k]) - pos)
                    views[k][pos : pos + n] = mv[:n]
                    mv, pos = mv[n:], pos + n
                    if pos == len(views[k]):
                        k, pos = k + 1, 0


def read_range_client(url: str, headers: dict[str, str], size: int) -> None:
    client = RangeClient()
    for start in range(0, size, REQUEST):
        client.read_into(url, headers, start, REQUEST, _views())
    client.close()


def client_reads(work: Path, size: int) -> None:
    with LocalHub(work / "client-hub") as hub:
        token = hub.create_token("bench", "write")
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo("bench/file")
        api.upload_file(path_or_fileobj=str(work / "f.bin"), path_in_repo="f.bin", repo_id="bench/file")
        url, headers = hf_hub_url("bench/file", "f.bin", endpoint=hub.url), request_headers(token)
        ways: list[tuple[str, Callable[[str, dict[str, str], int], None]]] = [
            ("httpx iter_bytes(1 MB) + copy (before)", read_httpx), ("RangeClient readinto (now)", read_range_client)]
        for _ in range(2):
            for name, fn in ways:
                t, w = time.thread_time(), time.monotonic()
                fn(url, headers, size)
                print(f"client Range reads, {name}: {(time.thread_time() - t) / (size / 1e9):.2f} CPU s/GB "
                      f"(wall {time.monotonic() - w:.1f} s)", flush=True)


def server_upload(work: Path, code: Path, size: int, sha: bytes) -> None:
    root = work / f"server-{code.name}"
    env = dict(os.environ, PYTHONPATH=str(code))
    # cwd outside any checkout: ``-m`` puts the cwd first on sys.path
    srv = subprocess.Popen([sys.executable, "-m", "publisher.hub.server", "--root", str(root)], env=env, cwd=work,
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None
        url = srv.stdout.readline().split()[-1]
        api = HfApi(endpoint=url, token=TokenStore(root).create("bench", "write"))

        def cpu() -> tuple[float, float]:
            fields = Path(f"/proc/{srv.pid}/stat").read_text().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            return int(fields[11]) / tick, int(fields[12]) / tick

        for i in range(2):
            api.create_repo(f"bench/up-{i}")
            op = CommitOperationAdd(path_in_repo="f.bin", path_or_fileobj=str(work / "f.bin"))
            op.upload_info.sha256 = sha
            (u0, s0), w = cpu(), time.monotonic()
            api.preupload_lfs_files(f"bench/up-{i}", additions=[op])
            u1, s1 = cpu()
            gb = size / 1e9
            print(f"server LFS upload, code from {code}: user {(u1 - u0) / gb:.2f} + system {(s1 - s0) / gb:.2f} CPU s/GB "
                  f"(wall {time.monotonic() - w:.1f} s)", flush=True)
    finally:
        srv.terminate()
        srv.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=512, help="size of the file read and uploaded (a multiple of 64)")
    ap.add_argument("--server-code", type=Path, action="append", help="a folder holding a publisher/ package")
    args = ap.parse_args()
    size = args.mb << 20
    work = Path(tempfile.mkdtemp(prefix="transfer-cpu-"))
    try:
        data = os.urandom(size)
        (work / "f.bin").write_bytes(data)
        sha = hashlib.sha256(data).digest()
        del data
        client_reads(work, size)
        for code in args.server_code or [ROOT]:
            server_upload(work, code.resolve(), size, sha)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
