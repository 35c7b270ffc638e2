"""Giving a file's disk back while it keeps its size and its other bytes (Linux ``fallocate``).

A streaming release frees each uploaded part of a shard this way, long before the shard is
done, so the disk bound leaves the merge room to go on (``lfs_parts``). Where the filesystem
or the platform cannot punch holes, nothing is freed early and the shard is freed whole once
uploaded, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
from collections.abc import Callable

_KEEP_SIZE_PUNCH_HOLE = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.EPERM}
_fallocate: Callable[[int, int, int, int], int] | None = None
_unsupported = sys.platform != "linux"


def _call() -> Callable[[int, int, int, int], int]:
    global _fallocate
    if _fallocate is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.fallocate
        fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
        fn.restype = ctypes.c_int
        _fallocate = fn
    return _fallocate


def block_size(fd: int) -> int:
    return max(512, os.fstat(fd).st_blksize)


def punch(fd: int, start: int, end: int) -> int:
    """Free the whole blocks of [start, end) (reads there give zeros); returns the bytes freed,
    0 where holes cannot be made (never an error)."""
    global _unsupported
    if _unsupported:
        return 0
    block = block_size(fd)
    lo, hi = -(-start // block) * block, end // block * block
    if hi <= lo:
        return 0
    if _call()(fd, _KEEP_SIZE_PUNCH_HOLE, lo, hi - lo) != 0:
        # Freeing early only saves room: whatever the reason, the shard is freed whole once uploaded.
        _unsupported = _unsupported or ctypes.get_errno() in _UNSUPPORTED
        return 0
    return hi - lo
