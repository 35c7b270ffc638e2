"""A streaming release with its measured pass (issue 13), 7B-width parents on a local Hub.

    flock /tmp/bench.lock python3 benchmarks/stream_measured.py [--layers 2] [--shard 1GB] [--tokens 512]

Two 7B-width Mistral parents (hidden 4096, intermediate 14336, vocab 32000; ``--layers`` of them)
are generated under ``--work`` and put on a local Hub served by this process (``hubseed.py``). The
SLERP + fp8-dynamic recipe of ``stream_release.py`` is released twice with ``publisher build
--publish``, each run its own process under ``/usr/bin/time -v`` while a thread samples the disk
under the client's folders (sparse holes count nothing):

1. ``--no-measure``: the streaming release with structural checks only;
2. measured: the same, with the measured pass over ``--tokens`` tokens of the merged model and
   its FP8 variant, their tensors computed again from the parents by Range requests and checked
   against the sha256 of the published ones (``publisher/check/recompute.py``).

Peak RSS is per layer (one decoder layer's weights resident), so 2 layers tell the 32-layer
figure; wall time grows with the layers. The random stand-ins' FP8 copy measures far from them,
so the FP8 thresholds are relaxed in the recipe's ``checks:`` (the numbers are printed, not gated).
Everything under ``--work`` is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from hubseed import make_parent_pair, seed_repo  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download  # noqa: E402
from stream_release import RECIPE, run  # noqa: E402

from publisher.commands.common import parse_size  # noqa: E402
from publisher.hub.server import LocalHub  # noqa: E402
from publisher.standins import SEVEN_B, with_layers  # noqa: E402

CHECKS = "checks: {{tokens: {tokens}, max_perplexity_vs_merged: 100.0, max_mean_kl: 10.0, max_perplexity_vs_uniform: 100.0}}\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/work/bench-data/stream-measured"))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--shard", default="1GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=512)
    args = ap.parse_args()
    shard = parse_size(args.shard)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    rows: dict[str, tuple[float, float, float, int]] = {}
    try:
        shape = with_layers(SEVEN_B, args.layers)
        folders = make_parent_pair(work / "parents", shape)
        parent_bytes = sum(f.stat().st_size for d in folders.values() for f in d.glob("*.safetensors"))
        with LocalHub(work / "hub") as server:
            token = server.create_token("bench", "write")
            api = HfApi(endpoint=server.url, token=token)
            for repo, folder in folders.items():
                seed_repo(server, api, repo, folder)
            base_env = dict(os.environ, HF_ENDPOINT=server.url, HF_TOKEN=token, PYTHONPATH=str(ROOT),
                            HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", OMP_NUM_THREADS="1")
            for name, measured in (("unmeasured", False), ("measured", True)):
                home = work / "clients" / name
                (home / "tmp").mkdir(parents=True)
                env = dict(base_env, HF_HOME=str(home / "hf-home"), TMPDIR=str(home / "tmp"),
                           PUBLISHER_CACHE=str(home / "pcache"))
                recipe = work / f"{name}.yaml"
                recipe.write_text(RECIPE.format(name=f"bench/{name}", layers=args.layers)
                                  + (CHECKS.format(tokens=args.tokens) if measured else ""))
                cmd = [py, "-m", "publisher.cli", "build", str(recipe), "--out", str(home / "build"), "--quiet",
                       "--max-shard-size", str(shard), "--threads", str(args.threads), "--publish"]
                t0 = time.monotonic()
                rows[f"streaming build --publish, {'measured pass over ' + str(args.tokens) + ' tokens' if measured else '--no-measure'}"] = \
                    run(cmd if measured else [*cmd, "--no-measure"], env, [home])
                print(f"{name} done in {time.monotonic() - t0:.0f} s", flush=True)
            report = json.loads(Path(hf_hub_download("bench/measured", "checks.json", revision="v1.0.0", endpoint=server.url,
                                                     token=token, cache_dir=work / "check")).read_text())
            same = all(
                {f.path: f.lfs.sha256 for f in api.list_repo_tree(f"bench/unmeasured{s}", revision="v1.0.0") if f.path.endswith(".safetensors")}
                == {f.path: f.lfs.sha256 for f in api.list_repo_tree(f"bench/measured{s}", revision="v1.0.0") if f.path.endswith(".safetensors")}
                for s in ("", "-FP8")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nparents 2 x {parent_bytes / 2e9:.2f} GB ({args.layers} layers of 7B width), --max-shard-size {args.shard}, "
          f"--threads {args.threads}, load {os.getloadavg()[0]:.1f}")
    print("| run | wall (s) | peak RSS (GiB) | CPU (s) | peak disk (GB) |")
    print("|---|---|---|---|---|")
    for name, (wall, rss, cpu, disk) in rows.items():
        print(f"| {name} | {wall:.1f} | {rss:.2f} | {cpu:.1f} | {disk / 1e9:.2f} |")
    print(f"disk bound max(2, variants) x shard + 0.3 GB = {(2 * shard + (300 << 20)) / 1e9:.2f} GB; same published bytes: {same}")
    print(f"checks.json: passed {report['passed']}, measured {report['measured']}, note {report.get('note')}")
    for m in report["measurements"]:
        print(f"  {m['variant']}: perplexity {m['perplexity']:.1f}, top-1 {m.get('top1_agreement')}, "
              f"KL {m.get('mean_kl')}, {m['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
