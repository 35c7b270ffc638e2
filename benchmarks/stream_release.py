"""Streaming release against download-then-build-then-upload, 7B-shaped parents on a local Hub.

    flock /tmp/bench.lock python3 benchmarks/stream_release.py [--layers 8] [--shard 1GB] [--work DIR] \
        [--rate none --rate 100MB/50MB ...] [--tail-ab]

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
Runs 1-4 are repeated for each ``--rate DOWN/UP`` setting: the local Hub's bandwidth limits
(``hub/server/throttle.py``, as ``publisher hub serve --max-rate-down/--max-rate-up``), so
floors and releases of one setting are measured on the same server with the same limits.
``--tail-ab`` adds, to the first setting, a streaming run whose last shards go one at a time
(``PUBLISHER_TAIL_UPLOADS=1``) rather than two at a time.

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
from hubseed import make_parent_pair, seed_repo  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402

from publisher.commands.common import parse_size  # noqa: E402
from publisher.hub.server import LocalHub  # noqa: E402
from publisher.hub.server.throttle import Limits  # noqa: E402
from publisher.standins import SEVEN_B, MistralShape, with_layers  # noqa: E402

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
endpoint, token, build, base = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
api = HfApi(endpoint=endpoint, token=token)
manifest = json.loads((build / "manifest.json").read_text())
for v in manifest["variants"]:
    repo = base + ("" if v["name"] == "merged" else "-" + v["name"])
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


def parse_rate(text: str) -> tuple[int | None, int | None]:
    """'none' or 'DOWN/UP' (e.g. 100MB/50MB): the local Hub's --max-rate-down/--max-rate-up."""
    if text == "none":
        return None, None
    down, _, up = text.partition("/")
    return parse_size(down), parse_size(up or down)


def release_once(label: str, tag: str, ctx: dict, results: dict) -> dict[str, float]:
    """One setting: read floor, today's path, upload floor, streaming (and the tail A/B)."""
    py, work, api, server, token, folders, shard, threads, client = (
        ctx[k] for k in ("py", "work", "api", "server", "token", "folders", "shard", "threads", "client"))
    row: dict[str, tuple[float, float, float, int]] = {}
    env, home = client(f"read-{tag}")
    row["read alone (HTTP GET of both parents)"] = run([py, "-c", READ_ALL, server.url, token, *folders], env, [home])
    print(f"[{label}] read floor {row['read alone (HTTP GET of both parents)'][0]:.1f} s", flush=True)
    for name in ("today", "streamed", "streamed1"):
        (work / f"{name}-{tag}.yaml").write_text(RECIPE.format(name=f"bench/{name}-{tag}", layers=ctx["layers"]))
    env, home = client(f"today-{tag}")
    build = home / "build"
    cmd = [py, "-m", "publisher.cli", "build", str(work / f"today-{tag}.yaml"), "--out", str(build), "--quiet", "--no-measure",
           "--max-shard-size", str(shard), "--threads", str(threads)]
    with DiskSampler([home]) as disk:
        b = timed(cmd, env)
        p = timed([py, "-m", "publisher.cli", "publish", str(build)], env)
    row["today: download + build, then publish"] = (b[0] + p[0], max(b[1], p[1]), b[2] + p[2], disk.peak)
    print(f"[{label}] today: build {b[0]:.1f} s, publish {p[0]:.1f} s", flush=True)
    ctx["out_bytes"] = sum(f.stat().st_size for f in build.rglob("*.safetensors"))
    env2, home2 = client(f"upload-{tag}")
    row["upload alone (huggingface_hub, the outputs)"] = run(
        [py, "-c", UPLOAD_ALL, server.url, token, str(build), f"bench/upload-floor-{tag}"], env2, [home2])
    shutil.rmtree(home)  # the baseline's cache and build: room for the next run
    print(f"[{label}] upload floor {row['upload alone (huggingface_hub, the outputs)'][0]:.1f} s", flush=True)
    runs = [("streaming: build --publish", "streamed", {})]
    if ctx["tail_ab"] and tag == "0":  # the first setting only: under a rate limit both tails share one bucket
        runs.append(("streaming, last shards one at a time", "streamed1", {"PUBLISHER_TAIL_UPLOADS": "1"}))
    for title, name, extra in runs:
        env, home = client(f"{name}-{tag}")
        row[title] = run(
            [py, "-m", "publisher.cli", "build", str(work / f"{name}-{tag}.yaml"), "--out", str(home / "build"),
             "--quiet", "--no-measure", "--max-shard-size", str(shard), "--threads", str(threads), "--publish"],
            {**env, **extra}, [home])
        shutil.rmtree(home)
        print(f"[{label}] {title} {row[title][0]:.1f} s", flush=True)

    def weights(repo: str) -> dict[str, str | None]:
        return {f.path: f.lfs.sha256 for f in api.list_repo_tree(repo, revision="v1.0.0")  # type: ignore[union-attr]
                if f.path.endswith(".safetensors")}

    same = all(weights(f"bench/today-{tag}{s}") == weights(f"bench/streamed-{tag}{s}") for s in ("", "-FP8"))
    commits = [c.title for c in api.list_repo_commits(f"bench/streamed-{tag}")]
    results[label] = {"runs": row, "same": same, "commits": commits, "load": os.getloadavg()[0]}
    return results[label]


def report(results: dict, ctx: dict, merge: tuple[float, float, float, int]) -> None:
    shard = ctx["shard"]
    print(f"\nparents 2 x {ctx['parent_bytes'] / 2e9:.2f} GB, outputs {ctx['out_bytes'] / 1e9:.2f} GB (merged + FP8), "
          f"--max-shard-size {ctx['shard_text']}, --threads {ctx['threads']}")
    print(f"merge alone (local parents, no network): {merge[0]:.1f} s wall, {merge[2]:.1f} s CPU, "
          f"{merge[1]:.2f} GiB RSS, {merge[3] / 1e9:.2f} GB disk")
    for label, r in results.items():
        print(f"\n### {label} (load {r['load']:.1f}); same weights as today's path: {r['same']}; commits {r['commits']}")
        print("| run | wall (s) | peak RSS (GiB) | CPU (s) | peak disk (GB) |")
        print("|---|---|---|---|---|")
        for name, (wall, rss, cpu, disk) in r["runs"].items():
            print(f"| {name} | {wall:.1f} | {rss:.2f} | {cpu:.1f} | {disk / 1e9:.2f} |")
    print("\n| setting | read floor (s) | upload floor (s) | today (s) | streaming (s) | streaming / max(floors) "
          "| peak RSS (GiB) | peak disk (GB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        runs = r["runs"]
        read, up = runs["read alone (HTTP GET of both parents)"][0], runs["upload alone (huggingface_hub, the outputs)"][0]
        st = runs["streaming: build --publish"]
        ratio = st[0] / max(read, up)
        print(f"| {label} | {read:.1f} | {up:.1f} | {runs['today: download + build, then publish'][0]:.1f} | {st[0]:.1f} "
              f"| **{ratio:.2f}** {'(meets <= 1.2)' if ratio <= 1.2 else '(misses 1.2)'} | {st[1]:.2f} | {st[3] / 1e9:.2f} |")
    print(f"disk bound 2 x shard + 0.3 GB = {(2 * shard + (300 << 20)) / 1e9:.2f} GB; RSS target <= 2.5 GiB")
    print(json.dumps({"merge": list(merge), **{k: {n: list(v) for n, v in r["runs"].items()} for k, r in results.items()}}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/stream-release"))
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--shard", default="1GB", help="--max-shard-size for both builds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rate", action="append", metavar="DOWN/UP",
                    help="the local Hub's bandwidth limits for one setting (e.g. 100MB/50MB), 'none' for unlimited; "
                    "repeatable: every setting is measured on the same parents (default: none)")
    ap.add_argument("--tail-ab", action="store_true",
                    help="also run the streaming release with its last shards uploaded one at a time (first setting)")
    ap.add_argument("--keep", action="store_true", help="keep --work (parents, Hub data) afterwards")
    ap.add_argument("--smoke", action="store_true", help="a 1024-wide stand-in instead of 7B width: checks the script, in minutes")
    args = ap.parse_args()
    settings = [(text, parse_rate(text)) for text in (args.rate or ["none"])]
    shard = parse_size(args.shard)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    results: dict[str, dict] = {}
    try:
        shape = with_layers(MistralShape(hidden=1024, intermediate=2048, layers=32, heads=8, kv_heads=4, vocab=8192)
                            if args.smoke else SEVEN_B, args.layers)
        t0 = time.monotonic()
        folders = make_parent_pair(work / "parents", shape)
        parent_bytes = sum(f.stat().st_size for d in folders.values() for f in d.glob("*.safetensors"))
        print(f"parents: 2 x {parent_bytes / 2e9:.2f} GB ({args.layers} layers of width {shape.hidden}), "
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
            merge = run(
                [py, "-m", "publisher.cli", "build", str(work / "local.yaml"), "--out", str(home / "build"), "--quiet", "--no-measure",
                 "--no-card", "--max-shard-size", str(shard), "--threads", str(args.threads)], env, [home])
            shutil.rmtree(home)
            print(f"merge floor {merge[0]:.1f} s", flush=True)
            ctx = {"py": py, "work": work, "api": api, "server": server, "token": token, "folders": folders, "shard": shard,
                   "shard_text": args.shard, "threads": args.threads, "client": client, "layers": args.layers,
                   "tail_ab": args.tail_ab, "parent_bytes": parent_bytes}
            for i, (text, (down, up)) in enumerate(settings):
                server.app.limits = Limits.rates(down, up)
                down_text, _, up_text = text.partition("/")
                label = "unthrottled" if down is None else f"down {down_text}/s, up {up_text or down_text}/s"
                release_once(label, str(i), ctx, results)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(results, ctx, merge)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
