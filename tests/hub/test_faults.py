"""Faults: error bursts, dropped uploads, the server or the publisher killed mid-way; versions stay whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, snapshot_download

from publisher.errors import PublisherError
from publisher.hub.publish import PublishReport, publish
from publisher.hub.remote import Retry
from publisher.hub.server import FaultRule
from publisher.hub.server.auth import TokenStore
from publisher.hub.server.storage import RepoKey, Store
from tests.hub.helpers import (
    FAST_RETRY,
    MEDIUM,
    Hub,
    build_files,
    make_build,
    read_line,
    snapshot_files,
)

REPO = "alice/tiny-merge"
ROOT_DIR = Path(__file__).resolve().parents[2]


def _assert_tag_holds(url: str, token: str, tag: str, build: Path, cache: Path) -> None:
    path = snapshot_download(REPO, revision=tag, endpoint=url, token=token, cache_dir=cache)
    assert snapshot_files(Path(path)) == build_files(build)


def test_error_bursts_are_retried(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", variants=False)
    for rule in (
        FaultRule("status", path=r"/refs$", method="GET", status=502, times=1),
        FaultRule("status", path=r"/preupload/", status=429, retry_after=0, times=2),
        FaultRule("status", path=r"lfs/objects/batch", status=503, times=1),
        FaultRule("status", path=r"/commit/", method="POST", status=500, times=2),
        FaultRule("status", path=r"/tag/", method="POST", status=500, times=1),
    ):
        hub.server.faults.add(rule)
    report = publish(build, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert report.results[0].action == "published"
    assert all(r.fired == r.times for r in hub.server.faults.rules)
    assert [c.title for c in hub.api().list_repo_commits(REPO)] == ["Publish v1.0.0", "initial commit"]
    _assert_tag_holds(hub.url, hub.token, "v1.0.0", build, tmp_path / "c")


def test_persistent_errors_fail_cleanly(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", variants=False)
    hub.server.faults.add(FaultRule("status", path=r"/commit/", method="POST", status=503, times=100))
    with pytest.raises(PublisherError, match="re-run"):
        publish(build, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert [c.title for c in hub.api().list_repo_commits(REPO)] == ["initial commit"]
    hub.server.faults.clear()
    assert publish(build, endpoint=hub.url, token=hub.token, retry=FAST_RETRY).results[0].action == "published"


def test_connection_dropped_mid_upload(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", variants=False, shape=MEDIUM, max_shard_bytes=700_000)
    hub.server.faults.add(FaultRule("drop", path=r"^/lfs-upload/", method="PUT", after_bytes=100_000, times=2))
    publish(build, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert hub.server.faults.rules[0].fired == 2
    _assert_tag_holds(hub.url, hub.token, "v1.0.0", build, tmp_path / "c")
    assert not list((hub.root / "tmp").glob("upload-*"))


def _start_server(root: Path, port: int = 0, faults: list[dict[str, object]] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A server process on ``port`` (0: the OS picks one, read back from its first line)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR))
    env.pop("PUBLISHER_HUB_FAULTS", None)
    if faults:
        fault_file = root.parent / "faults.json"
        fault_file.write_text(json.dumps(faults))
        env["PUBLISHER_HUB_FAULTS"] = str(fault_file)
    proc = subprocess.Popen([sys.executable, "-m", "publisher.hub.server", "--root", str(root), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = read_line(proc.stdout)
    assert line.startswith("serving "), line
    return proc, line.split()[1]


@pytest.mark.parametrize("point", ["commit.before-ref", "commit.after-ref"])
def test_server_killed_during_commit(tmp_path: Path, point: str) -> None:
    root = tmp_path / "root"
    token = TokenStore(root).create("alice")
    v1 = make_build(tmp_path / "v1", variants=False)
    v2 = make_build(tmp_path / "v2", version="2.0.0", seed=2, variants=False)
    server, url = _start_server(root)
    port = int(url.rsplit(":", 1)[1])  # restarts reuse it: the publisher in flight retries that URL
    publish(v1, endpoint=url, token=token, retry=FAST_RETRY)
    v1_head = HfApi(endpoint=url, token=token).list_repo_refs(REPO).branches[0].target_commit
    server.terminate()
    server.wait()

    marker = tmp_path / "in-commit"
    server, _ = _start_server(root, port, [{"action": "pause", "path": point, "point": True,
                                         "marker": str(marker), "seconds": 60}])
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = publish(v2, endpoint=url, token=token, retry=Retry(attempts=4, base_s=0.3))
        except PublisherError as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 180  # a safety net on a loaded machine, not a budget
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the commit never reached the fault point"
    os.kill(server.pid, signal.SIGKILL)
    server.wait()

    # on disk, right after the kill: the previous version, or the new commit whole (never a mix)
    repo = Store(root).get(RepoKey("model", "alice", "tiny-merge"))
    assert repo is not None
    refs = repo.refs()
    assert refs["refs/tags/v1.0.0"] == v1_head and "refs/tags/v2.0.0" not in refs
    head = refs["refs/heads/main"]
    if point == "commit.before-ref":
        assert head == v1_head
    else:
        files = repo.snapshot(head).files
        assert {p for p in files if p != ".gitattributes"} == set(build_files(v2))
        assert all(files[p].etag for p in files)

    server, _ = _start_server(root, port)  # back up: the running publisher may finish by itself
    try:
        thread.join(120)
        assert not thread.is_alive()
        rerun = publish(v2, endpoint=url, token=token, retry=FAST_RETRY)
        first: PublishReport | None = outcome.get("report")  # type: ignore[assignment]
        assert first is not None or rerun.results[0].action in ("published", "tagged")
        assert rerun.results[0].action in ("up to date", "published", "tagged")
        _assert_tag_holds(url, token, "v1.0.0", v1, tmp_path / "c1")
        _assert_tag_holds(url, token, "v2.0.0", v2, tmp_path / "c2")
        titles = [c.title for c in HfApi(endpoint=url, token=token).list_repo_commits(REPO)]
        assert titles == ["Publish v2.0.0", "Publish v1.0.0", "initial commit"]
    finally:
        server.terminate()
        server.wait()


def test_publisher_killed_mid_upload_then_rerun(hub: Hub, tmp_path: Path) -> None:
    v1 = make_build(tmp_path / "v1", variants=False, shape=MEDIUM, max_shard_bytes=700_000)
    publish(v1, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    api = hub.api()
    v1_head = api.list_repo_refs(REPO).branches[0].target_commit
    v2 = make_build(tmp_path / "v2", version="1.1.0", seed=7, variants=False, shape=MEDIUM, max_shard_bytes=700_000)
    marker = tmp_path / "uploading"
    hub.server.faults.add(FaultRule("pause", path=r"^/lfs-upload/", method="PUT", marker=str(marker), seconds=2))
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR), HF_ENDPOINT=hub.url, HF_TOKEN=hub.token)
    proc = subprocess.Popen([sys.executable, "-m", "publisher.cli", "publish", str(v2)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180  # a safety net on a loaded machine, not a budget
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists()
    proc.kill()
    proc.wait()
    refs = api.list_repo_refs(REPO)
    assert refs.branches[0].target_commit == v1_head and [t.name for t in refs.tags] == ["v1.0.0"]
    hub.server.faults.clear()
    done = subprocess.run([sys.executable, "-m", "publisher.cli", "publish", str(v2)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _assert_tag_holds(hub.url, hub.token, "v1.1.0", v2, tmp_path / "c")
