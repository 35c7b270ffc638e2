"""Multipart LFS uploads assembled in place: each part written at its offset of one file, hashed as it arrives.

huggingface_hub sends a large LFS object as numbered parts, one after another; a streaming
release sends a few at once, so they finish nearly, not exactly, in order. Each part is
written straight to its offset in the upload's single file (no part files to join later) and,
when it is the next part in order, fed to the object's running sha256, followed by the parts
that had finished before it (read back from the file, still in the page cache); a marker file
per part records that it is complete. At completion the digest is ready, so the link is not
idle while the object is read again. Parts sent twice (or a server restarted between parts)
are still correct: the digest is then computed from the assembled file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OBJECT = "object"


@dataclass
class _Progress:
    hash: Any = field(default_factory=hashlib.sha256)  # sha256 of parts 1 .. next - 1
    next: int = 1
    ahead: dict[int, tuple[int, int]] = field(default_factory=dict)  # part → (offset, length): written, not hashed
    lock: threading.Lock = field(default_factory=threading.Lock)


class Assembler:
    """The multipart uploads in progress under ``root``, one folder per upload (its ticket's nonce)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._progress: dict[str, _Progress] = {}
        self._lock = threading.Lock()

    def folder(self, nonce: object) -> Path:
        return self.root / re.sub(r"[^0-9a-f]", "", str(nonce))

    def write_part(self, nonce: object, number: int, offset: int, data: bytearray) -> None:
        """Part ``number`` (1-based), whole and checked by the caller, at ``offset`` of the object."""
        folder = self.folder(nonce)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / OBJECT, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            view, done = memoryview(data), 0
            while done < len(data):
                done += os.pwrite(fd, view[done:], offset + done)
        finally:
            os.close(fd)
        (folder / f"{number:05d}").touch()
        with self._lock:
            progress = self._progress.setdefault(folder.name, _Progress())
        with progress.lock:
            if progress.next == number:
                progress.hash.update(data)
                progress.next += 1
                self._catch_up(folder / OBJECT, progress)
            elif number < progress.next:
                progress.next = 0  # a part sent again may differ from what was hashed: read back at the end
            elif progress.next:
                progress.ahead[number] = (offset, len(data))

    @staticmethod
    def _catch_up(path: Path, progress: _Progress) -> None:
        """Hash the parts that finished before their turn and now follow the hashed ones."""
        if progress.next not in progress.ahead:
            return
        with open(path, "rb") as f:
            while progress.next in progress.ahead:
                offset, length = progress.ahead.pop(progress.next)
                f.seek(offset)
                while length:
                    block = f.read(min(length, 8 << 20))
                    if not block:
                        progress.next = 0  # the file is shorter than its parts: read back at the end
                        return
                    progress.hash.update(block)
                    length -= len(block)
                progress.next += 1

    def missing(self, nonce: object, parts: int) -> list[int]:
        folder = self.folder(nonce)
        return [n for n in range(1, parts + 1) if not (folder / f"{n:05d}").is_file()]

    def assembled(self, nonce: object, parts: int) -> tuple[Path, str]:
        """The object's file and its sha256 (hashed in order as received, else read back now)."""
        folder = self.folder(nonce)
        with self._lock:
            progress = self._progress.get(folder.name)
        path = folder / OBJECT
        if progress is not None and progress.next == parts + 1:
            return path, progress.hash.hexdigest()
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(8 << 20):
                digest.update(block)
        return path, digest.hexdigest()

    def discard(self, nonce: object) -> None:
        folder = self.folder(nonce)
        with self._lock:
            self._progress.pop(folder.name, None)
        shutil.rmtree(folder, ignore_errors=True)
