"""Parent tensors read from the Hub by HTTP Range requests, ahead of the engine, hashed whole.

The engine says up front which tensors it will read, in order (``start``). From that order a
schedule of byte ranges is made per parent file: each tensor's bytes, the gaps between them
(bytes the merge does not use) and the file's tail, so that every file the merge touches is
read once, front to back, and its sha256 can be checked against the Hub's LFS metadata when
its last byte has arrived. Neighbouring ranges share one request (up to ``REQUEST_BYTES``).
A few threads fetch requests in schedule order while the bytes fetched and not yet consumed
stay under ``read_ahead``; one thread hashes them in order. A tensor read before its turn (or a
second time) is fetched again, only for the caller. Failed requests are retried with backoff
(500, 429, dropped connections); a persistent failure or a sha256 mismatch is one error that
stops the build before anything is committed.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import PublisherError, SourceError
from publisher.hub.ranged import RangeClient
from publisher.hub.remote import Retry, describe
from publisher.hub.remote_source import RemoteFile, RemoteParent, request_headers
from publisher.lazy import torch
from publisher.merge.io import LocalSource
from publisher.tensors import TensorInfo

REQUEST_BYTES = 64 << 20
DEFAULT_READ_AHEAD = 512 << 20


@dataclass(frozen=True)
class RemoteInput:
    parent: RemoteParent
    file: RemoteFile
    header_bytes: bytes  # the real header (length prefix included), from the header-only copy


@dataclass(eq=False)
class _Piece:
    start: int
    length: int
    info: TensorInfo | None  # delivered to the engine, or only hashed (a gap)
    hashed: bool
    buf: torch.Tensor | None = None
    refs: int = 0  # who still needs the bytes: the engine (a tensor) and/or the hasher

    def __post_init__(self) -> None:
        self.refs = (self.info is not None) + self.hashed


@dataclass(eq=False)
class _Request:
    path: Path
    start: int
    length: int
    pieces: list[_Piece] = field(default_factory=list)
    fetched: bool = False


@dataclass
class _FileHash:
    remote: RemoteInput
    covered: int  # schedule: bytes up to here are scheduled for hashing
    hashed: int = 0
    hash: Any = None


class RangeSource:
    """A ``TensorSource`` over remote parents (local ones go through ``LocalSource``)."""

    def __init__(
        self,
        remote: dict[Path, RemoteInput],
        *,
        local: LocalSource | None = None,
        read_ahead: int = DEFAULT_READ_AHEAD,
        threads: int = 3,
        retry: Retry | None = None,
    ) -> None:
        self.remote = remote
        self.local = local or LocalSource()
        self.read_ahead = read_ahead
        self.threads = max(1, threads)
        self.retry = retry or Retry()
        self.bytes_fetched = 0
        self._requests: list[_Request] = []
        self._waiting: dict[tuple[Path, int], deque[_Piece]] = {}
        self._files: dict[Path, _FileHash] = {}
        self._cond = threading.Condition()
        self._next = 0  # next request to fetch
        self._outstanding = 0  # bytes fetched and not yet consumed and hashed
        self._error: BaseException | None = None
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._digests: dict[Path, str] = {}

    # ------------------------------------------------------------------ schedule
    def start(self, order: Sequence[TensorInfo]) -> None:
        local_order = [i for i in order if i.path not in self.remote]
        self.local.start(local_order)
        pieces: list[tuple[Path, _Piece]] = []
        for info in order:
            if info.path not in self.remote:
                continue
            state = self._files.get(info.path)
            if state is None:
                r = self.remote[info.path]
                state = self._files[info.path] = _FileHash(r, covered=len(r.header_bytes))
                state.hash = hashlib.sha256(r.header_bytes)
                state.hashed = len(r.header_bytes)
            end = info.offset + info.nbytes
            if info.offset >= state.covered:
                pieces += [(info.path, p) for p in _gaps(state.covered, info.offset)]
                pieces.append((info.path, _Piece(info.offset, info.nbytes, info, hashed=True)))
                state.covered = end
            else:  # before its turn, or read twice: its bytes are (or will be) hashed elsewhere
                pieces.append((info.path, _Piece(info.offset, info.nbytes, info, hashed=False)))
        for path, state in self._files.items():
            pieces += [(path, p) for p in _gaps(state.covered, state.remote.file.size)]
        for path, piece in pieces:
            last = self._requests[-1] if self._requests else None
            if (
                last is not None and last.path == path and last.start + last.length == piece.start
                and last.length + piece.length <= REQUEST_BYTES
            ):
                last.pieces.append(piece)
                last.length += piece.length
            else:
                self._requests.append(_Request(path, piece.start, piece.length, [piece]))
            if piece.info is not None:
                self._waiting.setdefault((path, piece.start), deque()).append(piece)
        for k in range(self.threads):
            self._spawn(self._fetch_loop, f"range-fetch-{k}")
        self._spawn(self._hash_loop, "range-hash")

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ------------------------------------------------------------------ the engine's side
    def read(self, info: TensorInfo) -> torch.Tensor:
        if info.path not in self.remote:
            return self.local.read(info)
        with self._cond:
            queue = self._waiting.get((info.path, info.offset))
            piece = queue[0] if queue else None
            if piece is None:
                raise RuntimeError(f"{info.name} was not announced to the range reader")
            queue.popleft()  # type: ignore[union-attr]
            while piece.buf is None and self._error is None:
                self._cond.wait(1.0)
            self._raise()
            buf = piece.buf
            assert buf is not None
            self._release(piece)
        return buf.view(info.torch_dtype).reshape(info.shape)

    def finish(self) -> dict[Path, str]:
        with self._cond:
            while self._error is None and len(self._digests) < len(self._files):
                self._cond.wait(1.0)
        self._stop()
        self._raise()
        return {**self.local.finish(), **self._digests}

    def abort(self) -> None:
        self._stop()
        self.local.abort()

    # ------------------------------------------------------------------ threads
    def _stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=60)
        self._threads.clear()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, err: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = err
            self._cond.notify_all()

    def _release(self, piece: _Piece) -> None:
        """One of the piece's users is done; with the last, its bytes stop counting (lock held)."""
        piece.refs -= 1
        if piece.refs == 0:
            piece.buf = None
            self._outstanding -= piece.length
            self._cond.notify_all()

    def _fetch_loop(self) -> None:
        client = RangeClient()
        try:
            while True:
                with self._cond:
                    while (
                        not self._stopped and self._error is None and self._next < len(self._requests)
                        and self._outstanding > 0
                        and self._outstanding + self._requests[self._next].length > self.read_ahead
                    ):
                        self._cond.wait(1.0)
                    if self._stopped or self._error is not None or self._next >= len(self._requests):
                        return
                    req = self._requests[self._next]
                    self._next += 1
                    self._outstanding += req.length
                self._fetch(client, req)
                with self._cond:
                    req.fetched = True
                    self.bytes_fetched += req.length
                    self._cond.notify_all()
        except BaseException as e:
            self._fail(e)
        finally:
            client.close()

    def _fetch(self, client: RangeClient, req: _Request) -> None:
        r = self.remote[req.path]
        url = r.parent.url(r.file.path)
        what = f"reading {r.parent.repo_id}/{r.file.path}@{r.parent.commit[:7]}"
        bufs = [torch.empty(p.length, dtype=torch.uint8) for p in req.pieces]
        views = [memoryview(b.numpy()).cast("B") for b in bufs]  # type: ignore[arg-type]
        headers = request_headers(r.parent.token)

        def once() -> None:
            client.read_into(url, headers, req.start, req.length, views)

        try:
            self.retry.call(once, what, r.parent.token)
        except PublisherError:
            raise
        except Exception as e:
            raise SourceError(f"{what} failed: {describe(e, r.parent.token)}", where=r.parent.repo_id, exit_code=1) from None
        with self._cond:
            for p, b in zip(req.pieces, bufs, strict=True):
                p.buf = b

    def _hash_loop(self) -> None:
        try:
            for req in self._requests:
                with self._cond:
                    while not req.fetched and not self._stopped and self._error is None:
                        self._cond.wait(1.0)
                    if self._stopped or self._error is not None:
                        return
                state = self._files[req.path]
                for p in req.pieces:
                    if not p.hashed:
                        continue
                    buf = p.buf
                    assert buf is not None and p.start == state.hashed
                    state.hash.update(memoryview(buf.numpy()).cast("B"))  # type: ignore[arg-type]
                    state.hashed += p.length
                    with self._cond:
                        self._release(p)
                if state.hashed == state.remote.file.size and req.path not in self._digests:
                    self._check(req.path, state)
        except BaseException as e:
            self._fail(e)

    def _check(self, path: Path, state: _FileHash) -> None:
        got, want = state.hash.hexdigest(), state.remote.file.sha256
        r = state.remote
        if want is not None and got != want:
            raise SourceError(
                f"{r.file.path}@{r.parent.commit[:7]}: the bytes read hash to sha256 {got[:12]}…, "
                f"the Hub's LFS metadata says {want[:12]}…",
                where=r.parent.repo_id,
                fix="the parent changed upstream or a read was corrupted; nothing was committed, re-run the release",
                exit_code=1,
            )
        with self._cond:
            self._digests[path] = got
            self._cond.notify_all()


def _gaps(start: int, end: int) -> list[_Piece]:
    return [_Piece(s, min(REQUEST_BYTES, end - s), None, hashed=True) for s in range(start, end, REQUEST_BYTES)]


def remote_inputs(models: Sequence[Any]) -> dict[Path, RemoteInput]:
    """The header-only copies' shard paths of resolved Hub parents → where their bytes live."""
    out: dict[Path, RemoteInput] = {}
    for m in models:
        remote: RemoteParent | None = getattr(m, "remote", None)
        if remote is None:
            continue
        for path in m.files.files:
            with path.open("rb") as f:
                prefix = f.read(8)
                header = prefix + f.read(struct.unpack("<Q", prefix)[0])
            rel = path.relative_to(m.path).as_posix()
            out[path] = RemoteInput(remote, remote.files[rel], header)
    return out
