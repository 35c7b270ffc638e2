"""sha256 of the parents' files from the bytes the engine reads anyway.

The manifest records each input file's sha256. Hashing local parents in a separate pass
would read 29 GB more for a 7B pair; instead each tensor's raw bytes, as a worker reads
them, are offered to a per-file hasher that consumes them in file order (out-of-order
pieces wait, bounded). A file the merge did not read whole and in order (tensors it does
not use, or a layout far from the plan's order) is left for an ordinary hash afterwards.
Methods never modify their input tensors, so the hasher can read them while they compute.
"""

from __future__ import annotations

import hashlib
import queue
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from publisher.lazy import torch
from publisher.tensors import TensorInfo

MAX_PENDING_BYTES = 512 << 20  # out-of-order bytes held per file before giving up on it
_STOP = object()


@dataclass
class _FileState:
    size: int
    hash: hashlib._Hash
    expected: int
    pending: dict[int, torch.Tensor] = field(default_factory=dict)
    pending_bytes: int = 0
    failed: bool = False


class InputHasher:
    """Hashes input files in a background thread from the tensors offered by the workers."""

    def __init__(self, paths: list[Path], max_pending: int = MAX_PENDING_BYTES) -> None:
        self.max_pending = max_pending
        self.files: dict[Path, _FileState] = {}
        for path in paths:
            if path.suffix != ".safetensors":
                continue
            with path.open("rb") as f:
                head = f.read(8)
                (n,) = struct.unpack("<Q", head)
                header = f.read(n)
            h = hashlib.sha256(head)
            h.update(header)
            self.files[path] = _FileState(size=path.stat().st_size, hash=h, expected=8 + n)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="input-hasher", daemon=True)
        self._error: BaseException | None = None
        if self.files:
            self._thread.start()

    def offer(self, info: TensorInfo, raw: torch.Tensor) -> None:
        """Called by a worker with a tensor's bytes as read from ``info.path`` (never modified later)."""
        if info.path in self.files and not self.files[info.path].failed:
            self._queue.put((info.path, info.offset, raw))

    def _consume(self, state: _FileState, offset: int, raw: torch.Tensor) -> None:
        n = raw.numel() * raw.element_size()
        if offset == state.expected:
            state.hash.update(_bytes(raw))
            state.expected += n
            while state.expected in state.pending:
                nxt = state.pending.pop(state.expected)
                state.pending_bytes -= nxt.numel() * nxt.element_size()
                state.hash.update(_bytes(nxt))
                state.expected += nxt.numel() * nxt.element_size()
        elif offset > state.expected:
            if offset not in state.pending:
                state.pending[offset] = raw
                state.pending_bytes += n
            if state.pending_bytes > self.max_pending:
                self._give_up(state)
        elif offset + n > state.expected:
            self._give_up(state)  # overlaps what was hashed: not the layout we assumed
        # else: read again (a tied tensor) and already hashed

    def _give_up(self, state: _FileState) -> None:
        state.failed = True
        state.pending.clear()
        state.pending_bytes = 0

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                assert isinstance(item, tuple)
                path: Path = item[0]
                offset: int = item[1]
                raw: torch.Tensor = item[2]
                state = self.files[path]
                if not state.failed:
                    self._consume(state, offset, raw)
        except BaseException as e:  # surfaced by finish()
            self._error = e
            while self._queue.get() is not _STOP:
                pass

    def finish(self) -> dict[Path, str]:
        """The files hashed whole and in order; the others are for an ordinary hash."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            raise self._error
        return {p: s.hash.hexdigest() for p, s in self.files.items() if not s.failed and s.expected == s.size}

    def abort(self) -> None:
        for state in self.files.values():
            self._give_up(state)
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


def _bytes(t: torch.Tensor) -> memoryview:
    from publisher.tensors import tensor_bytes

    return tensor_bytes(t)
