"""Streaming release under faults: killed and resumed, errors retried, persistent failures and
corrupted parents stop it with one line and no commit."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from publisher.hub.server import FaultRule
from publisher.hub.server.objects import RepoKey
from tests.streaming.conftest import Parents
from tests.streaming.kit import ROOT_DIR, cli, recipe_text, wait_while_running
from tests.streaming.test_stream_release import SHARD, _env, _mk, _repo_files

UPLOAD = "PUT /lfs-upload/{ticket}"


def _weights(folder: Path) -> dict[str, str]:
    """sha256 of a local build's files (merged and FP8), as repo paths."""
    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        rel = f.relative_to(folder).as_posix()
        out[rel.replace("variants/FP8/", "FP8:")] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _published(api: HfApi, name: str) -> dict[str, str]:
    out = {p: s for p, s in _repo_files(api, name, "v1.0.0").items() if p.endswith(".safetensors")}
    out |= {f"FP8:{p}": s for p, s in _repo_files(api, f"{name}-FP8", "v1.0.0").items() if p.endswith(".safetensors")}
    return out


def _plain_build(parents: Parents, tmp_path: Path) -> dict[str, str]:
    recipe = tmp_path / "plain.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b", name="alice/plain"))
    done = cli("build", str(recipe), "--out", str(tmp_path / "plain"), "--max-shard-size", str(SHARD), "--quiet",
               "--no-card", env=_env(parents, tmp_path / "plain-client"))
    assert done.returncode == 0, done.stderr
    return _weights(tmp_path / "plain")


def _linked(parents: Parents, key: str, sha: str) -> bool:
    """Whether the server holds a shard's object for its repo (what its LFS batch answers: an object is
    held per repo, so a shard of only unquantized tensors, the same bytes in both repos, is sent to each)."""
    name = "streamed-FP8" if key.startswith("FP8:") else "streamed"
    repo = parents.server.app.store.get(RepoKey("model", "alice", name))
    return repo is not None and repo.lfs.linked_size(repo.path, sha) is not None


def _commits(api: HfApi, repo_id: str) -> list[str]:
    return [c.title for c in api.list_repo_commits(repo_id)]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_killed_release_resumes_without_resending(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    expected = _plain_build(parents, tmp_path)
    recipes = _mk(tmp_path / "catalog" / "recipes")
    (recipes / "streamed.yaml").write_text(recipe_text("acme/base-a", "acme/base-b"))
    client = _mk(tmp_path / "client")
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR), **_env(parents, client))
    args = [sys.executable, "-m", "publisher.cli", "release", str(recipes), "--stream", "--quiet",
            "--builds", str(client / "builds"), "--max-shard-size", str(SHARD)]
    marker = tmp_path / "paused"
    parents.server.faults.add(FaultRule("pause", path=r"^/lfs-upload/", method="PUT", skip=2, times=1, seconds=20,
                                        marker=str(marker)))
    start = parents.server.app.stats[UPLOAD]
    finished_start = parents.server.app.finished[UPLOAD]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_while_running(proc, marker.exists), proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)  # killed while its third shard is on the wire
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    parents.server.faults.clear()
    assert parents.server.app.stats[UPLOAD] - start == 2  # the third (paused, then cut by the kill) never reached the route
    # When its pause ends, the cut request reaches the route; its body may have been read whole before
    # the kill, so it may store its object. Wait until its handler has finished either way, so that the
    # objects counted as held below are the ones the rerun finds.
    deadline = time.monotonic() + 120
    while parents.server.app.finished[UPLOAD] - finished_start < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert parents.server.app.finished[UPLOAD] - finished_start == 3
    before = parents.server.app.stats[UPLOAD]
    held = sum(1 for key, sha in expected.items() if _linked(parents, key, sha))  # 2, or 3 if the cut one landed
    assert held >= 2
    assert "v1.0.0" not in {t.name for t in api.list_repo_refs("alice/streamed").tags}
    assert _commits(api, "alice/streamed") == ["initial commit"]  # nothing visible yet

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sent_again = parents.server.app.stats[UPLOAD] - before
    assert sent_again == len(expected) - held  # the shards the server held were not sent again
    assert _published(api, "alice/streamed") == expected
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]
    assert _commits(api, "alice/streamed-FP8") == ["Publish v1.0.0", "initial commit"]

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)  # published: a no-op
    assert again.returncode == 0, again.stderr
    assert parents.server.app.stats[UPLOAD] - before == sent_again
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]


def test_read_and_upload_errors_are_retried(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    expected = _plain_build(parents, tmp_path)
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b"))
    data = r"/resolve/[0-9a-f]{40}/model-.*\.safetensors$"
    headers = 2 * sum(len(list(f.glob("*.safetensors"))) for f in parents.folders.values())  # plan's reads first
    rules = [
        FaultRule("status", path=data, method="GET", status=500, skip=headers, times=2),
        FaultRule("status", path=data, method="GET", status=429, retry_after=0, skip=headers + 3, times=1),
        FaultRule("drop", path=data, method="GET", skip=headers + 5, times=1),
        FaultRule("status", path=r"lfs/objects/batch", status=503, times=1),
        FaultRule("status", path=r"^/lfs-upload/", method="PUT", status=500, times=1),
        FaultRule("drop", path=r"^/lfs-upload/", method="PUT", after_bytes=50_000, skip=1, times=1),
    ]
    for rule in rules:
        parents.server.faults.add(rule)
    client = _mk(tmp_path / "client")
    done = cli("build", str(recipe), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet",
               "--publish", env=_env(parents, client))
    assert done.returncode == 0, done.stderr
    assert [r.fired for r in rules] == [r.times for r in rules]
    assert _published(api, "alice/streamed") == expected
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]


@pytest.mark.parametrize("where", ["read", "upload", "refused"])
def test_persistent_failure_is_one_line_and_no_commit(parents: Parents, tmp_path: Path, where: str) -> None:
    api = parents.api()
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b"))
    headers = 2 * sum(len(list(f.glob("*.safetensors"))) for f in parents.folders.values())
    if where == "read":
        rule = FaultRule("status", path=r"/resolve/[0-9a-f]{40}/model-.*\.safetensors$", method="GET", status=503,
                         skip=headers, times=10_000)
    elif where == "upload":  # every PUT of a shard fails: one retry layer, so a bounded number of tries
        rule = FaultRule("status", path=r"^/lfs-upload/", method="PUT", status=500, times=10_000)
    else:
        rule = FaultRule("status", path=r"/preupload/", method="POST", status=403, times=10_000)
    parents.server.faults.add(rule)
    puts = parents.server.app.stats[UPLOAD]  # the parents' own uploads
    client = _mk(tmp_path / "client")
    done = cli("build", str(recipe), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet",
               "--publish", env=_env(parents, client))
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    if where == "refused":
        assert "403" in line and rule.fired == 1  # not transient: not retried
    else:
        assert str(rule.status) in line and "failed 5 times" in line, line
    if where == "upload":
        # Retry's 5 tries, each one PUT: huggingface_hub's own 5 retries inside each are off (they made it 46 s).
        assert rule.fired == 5
        assert parents.server.app.stats[UPLOAD] == puts  # none reached the route
    if where == "read":
        assert rule.fired > 1
    assert "re-run" in line
    assert _commits(api, "alice/streamed") == ["initial commit"]
    assert not api.list_repo_refs("alice/streamed").tags


def test_a_parent_whose_bytes_do_not_match_its_lfs_sha256_stops_the_release(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    repo = "acme/base-b"
    shard = sorted(parents.folders[repo].glob("model-*.safetensors"))[1]
    oid = hashlib.sha256(shard.read_bytes()).hexdigest()
    stored = parents.server.root / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert stored.is_file()
    with stored.open("r+b") as f:  # a corrupted store (or a read gone wrong): same size, one byte off
        f.seek(stored.stat().st_size - 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", repo))
    client = _mk(tmp_path / "client")
    done = cli("build", str(recipe), "--out", str(client / "out"), "--max-shard-size", str(SHARD), "--quiet",
               "--publish", env=_env(parents, client))
    assert done.returncode == 1, done.stderr
    line = _one_line(done.stderr)
    assert shard.name in line and "sha256" in line and "LFS metadata" in line and repo in line
    assert _commits(api, "alice/streamed") == ["initial commit"]
