"""Streaming release on the local Hub: parents by Range requests, shards uploaded as written, one commit."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from huggingface_hub import HfApi

from tests.streaming.conftest import Parents
from tests.streaming.kit import cli, disk_files, recipe_text

SHARD = 400_000  # the merged model is ~1.2 MB: 4 shards, the FP8 copy 2-3


def _env(parents: Parents, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(tmp_path / "hf-home"),
            "PUBLISHER_CACHE": str(tmp_path / "pcache"), "TMPDIR": str(_mk(tmp_path / "tmp")), **extra}


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _repo_files(api: HfApi, repo_id: str, tag: str) -> dict[str, str]:
    """path → sha256 (LFS) or git blob id, at the tag."""
    out = {}
    for f in api.list_repo_tree(repo_id, revision=tag, recursive=True):
        if hasattr(f, "lfs"):
            out[f.path] = f.lfs.sha256 if f.lfs else f.blob_id
    return out


class DiskSampler:
    """Samples the bytes really on disk (sparse holes excluded) under a folder while a command runs;
    never more than was on disk at one instant (see ``_run``), so a peak over a bound is real."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.peak = 0
        self.peak_shards = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        previous: dict[str, int] | None = None
        while not self._stop.is_set():
            try:
                files = disk_files(self.root)
            except FileNotFoundError:
                previous = None
                continue
            # One walk stats its files one after another: a shard freed after its stat and another grown
            # before its own would count both, more than was ever on disk. Two walks that agree (files
            # only grow, or shrink once to a stub) saw one state at the first's end; only those count.
            stable, previous = files == previous, files
            if not stable:
                time.sleep(0.001)
                continue
            self.samples += 1
            self.peak = max(self.peak, sum(files.values()))
            # shard data: the first 8 KiB of each file (its header; a stub's or header copy's only block) aside
            shards = sum(max(0, n - 8192) for p, n in files.items() if ".safetensors" in p)
            self.peak_shards = max(self.peak_shards, shards)
            time.sleep(0.005)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_streamed_build_publishes_the_same_bytes_within_the_disk_bound(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    env = _env(parents, tmp_path)
    plain, streamed = tmp_path / "plain.yaml", tmp_path / "streamed.yaml"
    plain.write_text(recipe_text("acme/base-a", "acme/base-b", name="alice/plain"))
    streamed.write_text(recipe_text("acme/base-a", "acme/base-b", name="alice/streamed"))

    # Today's path: download the parents, build, publish.
    done = cli("build", str(plain), "--out", str(tmp_path / "plain"), "--max-shard-size", str(SHARD), "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert cli("publish", str(tmp_path / "plain"), env=env).returncode == 0

    # Streaming: uploads slowed down so that the writer has to wait for disk to be freed.
    from publisher.hub.server import FaultRule

    parents.server.faults.add(FaultRule("pause", path=r"^/lfs-upload/", method="PUT", seconds=0.3, times=100))
    parents.server.app.sent.clear()
    client = _mk(tmp_path / "client")
    env = _env(parents, client)
    with DiskSampler(client) as disk:
        done = cli("build", str(streamed), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet",
                   "--publish", "--no-measure", env=env)  # the measured pass reads them again: test_stream_measure.py
    assert done.returncode == 0, done.stderr
    parents.server.faults.clear()

    # Same files as the plain build and publish (the card and manifest name other repos and paths).
    for suffix in ("", "-FP8"):
        a, b = _repo_files(api, f"alice/plain{suffix}", "v1.0.0"), _repo_files(api, f"alice/streamed{suffix}", "v1.0.0")
        weights = {p for p in a if p.endswith(".safetensors")}
        assert len(weights) >= 2 and {p for p in b if p.endswith(".safetensors")} == weights
        for p in (*weights, "config.json", "tokenizer.json", "model.safetensors.index.json"):
            assert a[p] == b[p], p
        titles = [c.title for c in api.list_repo_commits(f"alice/streamed{suffix}")]
        assert titles == ["Publish v1.0.0", "initial commit"]

    # The parents' weights were read by Range requests, each byte once, never stored.
    read = sum(n for p, n in parents.server.app.sent.items() if p.endswith(".safetensors"))
    total = sum(f.stat().st_size for folder in parents.folders.values() for f in folder.glob("*.safetensors"))
    assert read == total  # headers for the plan, the rest by Range requests, hashed whole: every byte once
    assert not [p for p in (client / "hf-home").rglob("*.safetensors")] if (client / "hf-home").exists() else True

    # Disk: never more than two shards' worth of shard bytes (and the small files) at once.
    assert disk.samples > 20
    assert disk.peak_shards <= 2 * SHARD, disk.peak_shards
    merged_bytes = sum(f.stat().st_size for f in (tmp_path / "plain").rglob("*.safetensors"))
    assert disk.peak_shards < merged_bytes / 2
    assert disk.peak <= 2 * SHARD + (300 << 20)
    stubs = disk_files(client / "out")
    assert all(n <= 64 << 10 for p, n in stubs.items() if p.endswith(".safetensors"))


def test_three_variants_hold_one_shard_each_at_most(parents: Parents, tmp_path: Path) -> None:
    """Merged, FP8-dynamic and FP8-block fill a shard each at once: the bound is three shards, and holds."""
    from publisher.hub.server import FaultRule
    from publisher.streaming import shards_on_disk
    from tests.streaming.kit import RECIPE

    api = parents.api()
    recipe = tmp_path / "three.yaml"
    recipe.write_text(RECIPE.format(name="alice/three", a="acme/base-a", b="acme/base-b",
                                    quantize="quantize:\n  - scheme: fp8-dynamic\n  - scheme: fp8-block\n"))
    parents.server.faults.add(FaultRule("pause", path=r"^/lfs-upload/", method="PUT", seconds=0.3, times=100))
    client = _mk(tmp_path / "client")
    with DiskSampler(client) as disk:
        done = cli("build", str(recipe), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet",
                   "--publish", env=_env(parents, client))
    assert done.returncode == 0, done.stderr
    parents.server.faults.clear()

    repos = ["alice/three", "alice/three-FP8", "alice/three-FP8-BLOCK"]
    sizes = 0
    for repo_id in repos:
        assert [c.title for c in api.list_repo_commits(repo_id)] == ["Publish v1.0.0", "initial commit"]
        shards = [f for f in api.list_repo_tree(repo_id, revision="v1.0.0") if f.path.endswith(".safetensors")]
        assert len(shards) >= 2, repo_id  # every variant has a shard in progress most of the time
        sizes += sum(f.size for f in shards)
    bound = shards_on_disk(3) * SHARD
    assert bound == 3 * SHARD and bound < sizes / 2  # the bound is well under the outputs: it means something
    assert disk.samples > 20
    assert disk.peak_shards <= bound, disk.peak_shards
    assert disk.peak <= bound + (300 << 20)
