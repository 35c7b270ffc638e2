"""Shards sent in parts: each part's disk freed once the server has it, a failed part sent again alone."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from publisher.hub.server import FaultRule
from tests.streaming.conftest import Parents
from tests.streaming.kit import ROOT_DIR, recipe_text, wait_while_running
from tests.streaming.test_stream_faults import _commits, _plain_build, _published
from tests.streaming.test_stream_release import SHARD, DiskSampler, _env, _mk

PART = 64 << 10  # the local Hub's part size here: a 400 kB shard goes in 6-7 parts
PART_PUT = "PUT /lfs-upload/{ticket}/{part}"


def _allocated(root: Path) -> dict[Path, tuple[int, int]]:
    """Every shard under root: (size, bytes really on disk)."""
    return {p: (p.stat().st_size, p.stat().st_blocks * 512) for p in root.rglob("*.safetensors") if p.is_file()}


def _partly_freed(root: Path) -> list[Path]:
    """Shards whose first three parts are holes (all but the header's block) while the 4th is data."""
    out = []
    for p, (size, _used) in _allocated(root).items():
        if size <= 4 * PART:
            continue
        with p.open("rb") as f:
            fd = f.fileno()
            header_end = 8 + int.from_bytes(f.read(8), "little")
            first = -(-header_end // 4096) * 4096
            try:
                data_after_header = os.lseek(fd, first, os.SEEK_DATA)
                held = os.lseek(fd, 3 * PART, os.SEEK_DATA) == 3 * PART and os.lseek(fd, 3 * PART, os.SEEK_HOLE) >= 4 * PART
            except OSError:  # ENXIO: no data past the offset
                continue
            if data_after_header >= 3 * PART and held and f.read(header_end - 8).startswith(b"{"):
                out.append(p)
    return out


@dataclass
class _Release:
    """A streamed release of the stand-ins on a local Hub that takes objects in PART-byte parts."""

    args: list[str]
    env: dict[str, str]
    client: Path

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args, env=self.env, capture_output=True, text=True, timeout=300)


def _in_parts(parents: Parents, tmp_path: Path) -> _Release:
    parents.server.app.settings.multipart_threshold = PART
    parents.server.app.settings.chunk_size = PART
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b"))
    client = _mk(tmp_path / "client")
    return _Release([sys.executable, "-m", "publisher.cli", "build", str(recipe), "--out", str(client / "out"), "--quiet",
                     "--no-measure", "--max-shard-size", str(SHARD), "--publish"],
                    dict(os.environ, PYTHONPATH=str(ROOT_DIR), **_env(parents, client)), client)


def _hold_part_4(parents: Parents) -> tuple[FaultRule, threading.Event]:
    """The first request for a 4th part waits on the wire until the event is set."""
    go = threading.Event()
    return parents.server.faults.add(FaultRule("pause", path=r"^/lfs-upload/[^/]+/4$", method="PUT", seconds=120,
                                               resume=go)), go


def test_parts_are_freed_as_sent_and_a_failed_part_is_sent_again_alone(parents: Parents, tmp_path: Path) -> None:
    api = parents.api()
    expected = _plain_build(parents, tmp_path)
    release = _in_parts(parents, tmp_path)
    pause, go = _hold_part_4(parents)
    fail = parents.server.faults.add(FaultRule("status", path=r"^/lfs-upload/[^/]+/5$", method="PUT", status=500, times=1))
    routed = parents.server.app.stats[PART_PUT]
    with DiskSampler(release.client) as disk:
        proc = release.start()
        try:
            # The 4th part of a shard is held on the wire: parts 1-3 get answered (they go at once), so
            # their bytes, but not the header's nor the held part's, leave the disk while it waits.
            found = wait_while_running(proc, lambda: _partly_freed(release.client))
            assert found, proc.stderr.read() if proc.poll() is not None and proc.stderr else _allocated(release.client)
            go.set()
            _, stderr = proc.communicate(timeout=300)
        finally:
            go.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, stderr
    assert pause.fired == 1 and fail.fired == 1
    assert _published(api, "alice/streamed") == expected
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]
    # One PUT per part reached the route, the failed one's retry included: nothing else was sent again.
    sizes = [f.size for repo in ("alice/streamed", "alice/streamed-FP8")
             for f in api.list_repo_tree(repo, revision="v1.0.0") if f.path.endswith(".safetensors")]
    assert parents.server.app.stats[PART_PUT] - routed == sum(math.ceil(n / PART) for n in sizes)
    assert disk.samples > 20 and disk.peak_shards <= 2 * SHARD, disk.peak_shards
    # The header of every shard is still there for the card stage; the data is gone.
    for p, (_size, used) in _allocated(release.client / "out").items():
        with p.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            assert f.read(n).startswith(b"{"), p
        assert used <= 64 << 10, p


def test_killed_with_a_shard_partly_freed_rebuilds_that_shard(parents: Parents, tmp_path: Path) -> None:
    """A kill while a shard's first parts are freed and the rest is on the wire: the rerun cannot send
    the freed bytes, so it builds that shard again, and ends with the same bytes and one commit."""
    api = parents.api()
    expected = _plain_build(parents, tmp_path)
    release = _in_parts(parents, tmp_path)
    _pause, go = _hold_part_4(parents)
    proc = release.start()
    try:
        found = wait_while_running(proc, lambda: _partly_freed(release.client))
        assert found, proc.stderr.read() if proc.poll() is not None and proc.stderr else _allocated(release.client)
        proc.kill()
        proc.wait(30)
    finally:
        go.set()  # the held request goes on; its upload is never completed
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _commits(api, "alice/streamed") == ["initial commit"]
    parents.server.faults.clear()
    done = release.run()
    assert done.returncode == 0, done.stderr
    assert _published(api, "alice/streamed") == expected
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]
    assert _commits(api, "alice/streamed-FP8") == ["Publish v1.0.0", "initial commit"]


def test_a_completion_lost_after_the_object_was_stored_is_not_a_failure(parents: Parents, tmp_path: Path) -> None:
    """The server stores the object, then its answer to the completion is lost (a 500 here): the
    completion tried again is refused, its parts being gone, but the object is there, so all is well."""
    api = parents.api()
    expected = _plain_build(parents, tmp_path)
    release = _in_parts(parents, tmp_path)
    lost = parents.server.faults.add(FaultRule("raise", path="lfs.after-complete", point=True, times=1))
    done = release.run()
    assert done.returncode == 0, done.stderr
    assert lost.fired == 1
    assert _published(api, "alice/streamed") == expected
    assert _commits(api, "alice/streamed") == ["Publish v1.0.0", "initial commit"]
