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
    """Samples the bytes really on disk (sparse holes excluded) under a folder while a command runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.peak = 0
        self.peak_shards = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                files = disk_files(self.root)
            except FileNotFoundError:
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
                   "--publish", env=env)
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
