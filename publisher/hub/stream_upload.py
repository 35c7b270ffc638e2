"""Shards uploaded as LFS objects while the merge goes on, then freed from disk.

Each whole shard goes to its variant's repo as an LFS object (``lfs_parts``: the Hub's LFS
protocol through huggingface_hub's calls, the sha256 the writer already computed), on one
background thread (two for the shards left when the merge ends). Each part is freed from disk
as soon as the server has it; once the object is whole there, the shard is a header-only stub
of the same size (the real header over a sparse hole), so the card stage reads its facts as
from the real file and the publisher's one commit finds the object already on the server and
sends nothing more. No commit is made here: the version becomes visible only with that commit.

Disk: before bytes are written the engine ``reserve``s them; while the bytes on disk (shards
being written, waiting for upload, or the parts of one being uploaded not yet sent) would pass
``budget``, it waits for an upload to free some. With no upload pending it goes on (waiting
would never end): then only shards in progress are on disk, at most one per variant, so disk
stays under max(budget, variants × shard size), and the build sets budget to that
(``streaming.shards_on_disk``). Freeing by parts is what keeps the upload link busy: with a
whole shard held until its last byte is sent, the merge stalls under the budget and no other
shard is whole when the upload ends.
Resuming: ``uploads.json`` in the work folder lists the shards uploaded; a rerun checks with
the LFS batch API that the server still holds each (else the shard is built again), and
uploads shards a killed run had finished but not sent.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import HubError, PublisherError
from publisher.hub import lfs_parts, oidc
from publisher.hub.ranged import write_header_copy
from publisher.hub.remote import Retry, describe, is_transient
from publisher.merge.io import DoneShard

if TYPE_CHECKING:
    from huggingface_hub import HfApi

UPLOADS_FILE = "uploads.json"
# Upload threads for the shards left when the merge ends; the environment variable exists
# for the benchmark's A/B (``stream_release.py --tail-ab``).
TAIL_UPLOADS = 1 if os.environ.get("PUBLISHER_TAIL_UPLOADS") == "1" else 2
_STOP = object()


@dataclass(frozen=True)
class Target:
    repo_id: str
    folder: str  # the variant's folder in the build ("" for the merged model)


class HubShardSink:
    """A ``ShardSink`` that uploads each shard to its variant's repo and frees its disk."""

    def __init__(
        self,
        api: HfApi,
        token: str | None,
        work_dir: Path,
        targets: list[Target],
        *,
        budget: int,
        retry: Retry | None = None,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.api = api
        self.token = token
        self.work_dir = work_dir
        self.targets = sorted(targets, key=lambda t: -len(t.folder))  # deepest folder first
        self.budget = budget
        self.retry = retry or Retry()  # the only retries: huggingface_hub's are off (``backoff.py``)
        self.log = log
        self.uploaded: dict[str, str] = self._load()  # key → sha256
        self.bytes_sent = 0
        self.peak_on_disk = 0
        self._on_disk = 0  # bytes of shards written or being written and not yet uploaded
        self._busy = 0  # shards queued or uploading
        self._freed_early: dict[str, int] = {}  # key → bytes of a shard being uploaded already freed
        self._cond = threading.Condition()
        self._queue: queue.Queue[object] = queue.Queue()
        self._error: BaseException | None = None
        self._state = threading.Lock()  # ``uploaded`` and its file, shared by the upload threads
        self._threads = [threading.Thread(target=self._run, name="shard-upload", daemon=True)]
        self._threads[0].start()

    # ------------------------------------------------------------------ state
    def _load(self) -> dict[str, str]:
        try:
            data = json.loads((self.work_dir / UPLOADS_FILE).read_text())
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        tmp = self.work_dir / (UPLOADS_FILE + ".tmp")
        tmp.write_text(json.dumps(self.uploaded, indent=1, sort_keys=True))
        os.replace(tmp, self.work_dir / UPLOADS_FILE)

    def target(self, key: str) -> tuple[str, str]:
        """(repo id, path in repo) of a shard key ``<variant folder>/<name>``."""
        for t in self.targets:
            prefix = f"{t.folder}/" if t.folder else ""
            if key.startswith(prefix):
                return t.repo_id, key[len(prefix):]
        raise KeyError(key)

    # ------------------------------------------------------------------ the engine's side
    def resume(self, done: list[DoneShard]) -> list[DoneShard]:
        kept = []
        held = self._held([d for d in done if self.uploaded.get(d.key) == d.digest.sha256 and d.path.is_file()])
        for d in done:
            if d.key in held:
                kept.append(d)
                if _whole(d):
                    _to_stub(d.path)  # killed between the upload and freeing the disk
            elif self.uploaded.get(d.key) != d.digest.sha256 and _whole(d):
                self.log(f"uploading {d.key}, finished by an earlier run")
                kept.append(d)
                self.shard_done(d)
            else:
                d.path.unlink(missing_ok=True)  # a stub whose object the server lost: build it again
                self.uploaded.pop(d.key, None)
        self._save()
        return kept

    def reserve(self, nbytes: int) -> None:
        with self._cond:
            while self._error is None and self._busy and self._on_disk + nbytes > self.budget:
                self._cond.wait(1.0)
            self._raise()
            self._on_disk += nbytes
            self.peak_on_disk = max(self.peak_on_disk, self._on_disk)

    def shard_done(self, shard: DoneShard) -> None:
        with self._cond:
            self._raise()
            self._busy += 1
        self._queue.put(shard)

    def finish(self) -> None:
        """Wait for the last uploads. The merge is over, so nothing else competes with them: the
        shards still queued (each variant's last, at least) go two at a time, not one after another."""
        for _ in range(TAIL_UPLOADS - 1 if self._error is None and self._queue.qsize() > 0 else 0):
            tail = threading.Thread(target=self._run, name="shard-upload-tail", daemon=True)
            tail.start()
            self._threads.append(tail)
        self._stop_threads(timeout=None)
        self._raise()

    def abort(self) -> None:
        with self._cond:
            if self._error is None:
                self._error = PublisherError("aborted")
            self._cond.notify_all()
        self._stop_threads(timeout=600)

    def _stop_threads(self, timeout: float | None) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout=timeout)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ the upload thread
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, DoneShard)
            if self._error is not None:
                continue
            try:
                self._upload(item)
            except BaseException as e:
                with self._cond:
                    self._error = e
                    self._cond.notify_all()
                continue
            with self._cond:
                self._busy -= 1
                self._on_disk -= item.digest.size - self._freed_early.pop(item.key, 0)
                self._cond.notify_all()

    def _upload(self, shard: DoneShard) -> None:
        repo_id, path_in_repo = self.target(shard.key)
        if self.uploaded.get(shard.key) != shard.digest.sha256:
            obj = lfs_parts.LfsObject(shard.path, shard.digest.size, shard.digest.sha256, keep=_header_end(shard.path))
            self.log(f"{repo_id}: uploading {path_in_repo} ({shard.digest.size / 1e9:.2f} GB)")
            # the sha256 was computed while the shard was written: the file is read once, to send it
            sent = lfs_parts.send(obj, repo_id, endpoint=self.api.endpoint, token=oidc.token_for(self.api, repo_id, self.token),
                                  call=self._call, freed=lambda n: self._freed(shard, n))
            with self._state:
                self.bytes_sent += shard.digest.size if sent else 0
                self.uploaded[shard.key] = shard.digest.sha256
                self._save()
        _to_stub(shard.path)

    def _freed(self, shard: DoneShard, nbytes: int) -> None:
        """Part of a shard being uploaded was given back to the disk: the merge may write that much more."""
        with self._cond:
            self._freed_early[shard.key] = self._freed_early.get(shard.key, 0) + nbytes
            self._on_disk -= nbytes
            self._cond.notify_all()

    def _held(self, shards: list[DoneShard]) -> set[str]:
        """Keys of the shards whose LFS object the server holds in their repo (the LFS batch API)."""
        held: set[str] = set()
        by_repo: dict[str, list[DoneShard]] = {}
        for d in shards:
            by_repo.setdefault(self.target(d.key)[0], []).append(d)
        for repo_id, items in by_repo.items():
            present = lfs_parts.held(repo_id, [(d.digest.sha256, d.digest.size) for d in items],
                                     endpoint=self.api.endpoint, token=oidc.token_for(self.api, repo_id, self.token),
                                     call=self._call)
            held |= {d.key for d in items if d.digest.sha256 in present}
        return held

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn`` with retries; huggingface_hub wraps upload errors, so the cause decides."""

        def unwrapped() -> Any:
            try:
                return fn()
            except Exception as e:
                cause = next((c for c in _chain(e) if is_transient(c)), None)
                if cause is not None and cause is not e:
                    raise cause from None
                raise

        try:
            return self.retry.call(unwrapped, what, self.token)
        except PublisherError:
            raise
        except Exception as e:
            raise HubError(f"{what} failed: {describe(e, self.token)}",
                           fix="nothing was committed; re-run the same command to resume") from None


def _chain(err: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in out and len(out) < 8:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _whole(shard: DoneShard) -> bool:
    """A shard file with all its bytes (not a header-only stub)."""
    try:
        st = shard.path.stat()
    except FileNotFoundError:
        return False
    return st.st_size == shard.digest.size and st.st_blocks * 512 >= st.st_size - 4096


def _header_end(path: Path) -> int:
    """Bytes of a safetensors file up to the end of its header."""
    with path.open("rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def _to_stub(path: Path) -> None:
    """Replace a shard by its header over a hole of the same size: facts stay readable, disk is freed."""
    with path.open("rb") as f:
        prefix = f.read(8)
        header = prefix + f.read(int.from_bytes(prefix, "little"))
    size = path.stat().st_size
    tmp = path.with_name(path.name + ".stub")
    write_header_copy(tmp, header, size)
    os.replace(tmp, path)
