"""Streaming release against download-then-build-then-upload, 7B-shaped parents on a local Hub.

    flock /tmp/bench.lock python3 benchmarks/stream_release.py [--layers 8] [--shard 1GB] [--work DIR]

Two 7B-width Mistral parents (hidden 4096, intermediate 14336, vocab 32000; ``--layers`` of
them, 32 for the real size) are generated under ``--work`` and put on a local Hub served by this
process (hard links into its LFS store, ``hubseed.py``). A SLERP + fp8-dynamic recipe is then
released four ways, each a separate process timed by ``/usr/bin/time -v`` while a thread samples
the disk used under the client's folders (HF cache, builds, temp; sparse holes count nothing):

1. read alone: every byte of both parents over HTTP (GET, discarded): the read floor;
2. upload alone: the outputs of (3) committed to a fresh repo with huggingface_hub: the upload floor;
3. today: ``publisher build`` (snapshot_download of the parents, merge, write) then ``publisher publish``;
4. streaming: ``publisher build --publish`` (Range reads, shards uploaded as written, one commit);

and, as a third floor, the merge alone (``publisher build`` from the parents' folders, no network).

Everything under ``--work`` is deleted at the end (parents, the Hub's data, the builds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from benchlib import timed  # noqa: E402
from hubseed import seed_repo  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402

from publisher.commands.common import parse_size  # noqa: E402
from publisher.hub.server import LocalHub  # noqa: E402
from publisher.standins import SEVEN_B, Recipe, generate_model, with_layers  # noqa: E402

RECIPE = """\
name: {name}
version: 1.0.0
merge:
  slices:
    - sources:
        - model: bench/parent-a
          layer_range: [0, {layers}]
        - model: bench/parent-b
          layer_range: [0, {layers}]
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
  summary: A benchmark merge of two 7B-shaped stand-ins.
"""

READ_ALL = """
import sys
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.utils import get_session
endpoint, token = sys.argv[1], sys.argv[2]
api, s, n = HfApi(endpoint=endpoint, token=token), get_session(), 0
for repo in sys.argv[3:]:
    for f in api.list_repo_files(repo):
        if f.endswith(".safetensors"):
            with s.stream("GET", hf_hub_url(repo, f, endpoint=endpoint), headers={"authorization": f"Bearer {token}"},
                          follow_redirects=True, timeout=600) as r:
                for chunk in r.iter_bytes(1 << 20):
                    n += len(chunk)
print(n)
"""

UPLOAD_ALL = """
import json, sys
from pathlib import Path
from huggingface_hub import CommitOperationAdd, HfApi
endpoint, token, build = sys.argv[1], sys.argv[2], Path(sys.argv[3])
api = HfApi(endpoint=endpoint, token=token)
manifest = json.loads((build / "manifest.json").read_text())
for v in manifest["variants"]:
    repo = "bench/upload-floor" + ("" if v["name"] == "merged" else "-" + v["name"])
    api.create_repo(repo, exist_ok=True)
    ops = []
    for f in v["files"]:
        if f["path"].endswith(".safetensors"):
            op = CommitOperationAdd(f["path"], str(build / v["folder"] / f["path"]))
            op.upload_info.sha256 = bytes.fromhex(f["sha256"])  # known: a pure upload, no hashing
            ops.append(op)
    api.create_commit(repo, ops, commit_message="upload floor")
"""


class DiskSampler:
    def __init__(self, roots: list[Path]) -> None:
        self.roots, self.peak = roots, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> int:
        total = 0
        for root in self.roots:
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used())
            time.sleep(0.2)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._used())


def run(cmd: list[str], env: dict[str, str], roots: list[Path]) -> tuple[float, float, float, int]:
    """(wall s, peak RSS GiB, CPU s, peak disk bytes) of one command."""
    with DiskSampler(roots) as disk:
        wall, rss, cpu = timed(cmd, env)
    return wall, rss, cpu, disk.peak


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/stream-release"))
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--shard", default="1GB", help="--max-shard-size for both builds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep --work (parents, Hub data) afterwards")
    args = ap.parse_args()
    shard = parse_size(args.shard)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    results: dict[str, tuple[float, float, float, int]] = {}
    try:
        shape = with_layers(SEVEN_B, args.layers)
        t0 = time.monotonic()
        folders = {}
        for repo, seed in (("bench/parent-a", 1), ("bench/parent-b", 2)):
            folders[repo] = generate_model(work / "parents" / repo.split("/")[1], shape, recipe=Recipe(seed=seed),
                                           max_shard_bytes=5_000_000_000)
        parent_bytes = sum(f.stat().st_size for d in folders.values() for f in d.glob("*.safetensors"))
        print(f"parents: 2 x {parent_bytes / 2e9:.2f} GB ({args.layers} layers of 7B width), "
              f"generated in {time.monotonic() - t0:.0f} s", flush=True)
        with LocalHub(work / "hub") as server:
            token = server.create_token("bench", "write")
            api = HfApi(endpoint=server.url, token=token)
            for repo, folder in folders.items():
                seed_repo(server, api, repo, folder)
            base_env = dict(os.environ, HF_ENDPOINT=server.url, HF_TOKEN=token, PYTHONPATH=str(ROOT),
                            HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", OMP_NUM_THREADS="1")

            def client(name: str) -> tuple[dict[str, str], Path]:
                home = work / "clients" / name
                (home / "tmp").mkdir(parents=True)
                env = dict(base_env, HF_HOME=str(home / "hf-home"), TMPDIR=str(home / "tmp"),
                           PUBLISHER_CACHE=str(home / "pcache"))
                return env, home

            (work / "local.yaml").write_text(
                RECIPE.format(name="bench/local", layers=args.layers)
                .replace("bench/parent-a", str(folders["bench/parent-a"]))
                .replace("bench/parent-b", str(folders["bench/parent-b"])))
            env, home = client("merge")
            results["merge alone (local parents, no network)"] = run(
                [py, "-m", "publisher.cli", "build", str(work / "local.yaml"), "--out", str(home / "build"), "--quiet", "--no-measure",
                 "--no-card", "--max-shard-size", str(shard), "--threads", str(args.threads)], env, [home])
            shutil.rmtree(home)
            print("merge floor done", flush=True)

            env, home = client("read")
            results["read alone (HTTP GET of both parents)"] = run(
                [py, "-c", READ_ALL, server.url, token, *folders], env, [home])
            print("read floor done", flush=True)

            for name in ("today", "streamed"):
                (work / f"{name}.yaml").write_text(RECIPE.format(name=f"bench/{name}", layers=args.layers))
            env, home = client("today")
            build = home / "build"
            cmd = [py, "-m", "publisher.cli", "build", str(work / "today.yaml"), "--out", str(build), "--quiet", "--no-measure",
                   "--max-shard-size", str(shard), "--threads", str(args.threads)]
            with DiskSampler([home]) as disk:
                b = timed(cmd, env)
                p = timed([py, "-m", "publisher.cli", "publish", str(build)], env)
            results["today: download + build, then publish"] = (b[0] + p[0], max(b[1], p[1]), b[2] + p[2], disk.peak)
            print(f"today: build {b[0]:.1f} s, publish {p[0]:.1f} s", flush=True)
            out_bytes = sum(f.stat().st_size for f in build.rglob("*.safetensors"))

            env2, home2 = client("upload")
            results["upload alone (huggingface_hub, the outputs)"] = run(
                [py, "-c", UPLOAD_ALL, server.url, token, str(build)], env2, [home2])
            shutil.rmtree(home)  # the baseline's cache and build: room for the next run
            print("upload floor done", flush=True)

            env, home = client("streamed")
            results["streaming: build --publish"] = run(
                [py, "-m", "publisher.cli", "build", str(work / "streamed.yaml"), "--out", str(home / "build"),
                 "--quiet", "--no-measure", "--max-shard-size", str(shard), "--threads", str(args.threads), "--publish"], env, [home])
            same = all(
                {f.path: f.lfs.sha256 for f in api.list_repo_tree(f"bench/today{s}", revision="v1.0.0") if f.path.endswith(".safetensors")}
                == {f.path: f.lfs.sha256 for f in api.list_repo_tree(f"bench/streamed{s}", revision="v1.0.0") if f.path.endswith(".safetensors")}
                for s in ("", "-FP8")
            )
            commits = [c.title for c in api.list_repo_commits("bench/streamed")]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"parents 2 x {parent_bytes / 2e9:.2f} GB, outputs {out_bytes / 1e9:.2f} GB (merged + FP8), "
          f"--max-shard-size {args.shard}, --threads {args.threads}, load {os.getloadavg()[0]:.1f}")
    print("| run | wall (s) | peak RSS (GiB) | CPU (s) | peak disk (GB) |")
    print("|---|---|---|---|---|")
    for name, (wall, rss, cpu, disk) in results.items():
        print(f"| {name} | {wall:.1f} | {rss:.2f} | {cpu:.1f} | {disk / 1e9:.2f} |")
    floor = max(results["read alone (HTTP GET of both parents)"][0], results["upload alone (huggingface_hub, the outputs)"][0])
    merge = results["merge alone (local parents, no network)"][0]
    stream = results["streaming: build --publish"]
    print(f"streaming wall / max(read, upload) = {stream[0] / floor:.2f} (target <= 1.2); "
          f"/ max(read, upload, merge alone) = {stream[0] / max(floor, merge):.2f}")
    print(f"streaming peak disk {stream[3] / 1e9:.2f} GB vs bound 2 x shard + 0.3 GB = {(2 * shard + (300 << 20)) / 1e9:.2f} GB")
    print(f"streaming peak RSS {stream[1]:.2f} GiB (target <= 2.5 GiB); same weights as today's path: {same}; "
          f"commits: {commits}")
    print(json.dumps({k: list(v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
