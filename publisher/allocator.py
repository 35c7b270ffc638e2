"""Give freed tensor memory back to the OS while streaming.

glibc's malloc keeps freed memory in its arenas (one per thread that allocated, up to 8 per
core) and raises its mmap threshold after each large free (up to 32 MiB), so tensors of a
few MiB come from arenas that keep their high-water mark: peak RSS then grows with the number
of threads and with how their allocations interleave, whatever the memory budget says
(measured: a 16 MiB budget with 8 threads, 557 MiB peak against a 272 MiB tiny build; the
16-layer 7B-width SLERP, 1.62–2.06 GiB from run to run). Two arenas bound what is kept, and
``release_freed`` (``malloc_trim``) hands the free pages back after each tensor is written:
once per tensor, not per allocation, so the temporaries of a tensor's chunks stay hot.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

_M_ARENA_MAX = -8
ARENA_MAX = 2

_libc: Any = None
_applied: bool | None = None


def _glibc() -> Any:
    """The C library if it is glibc (has mallopt and malloc_trim), else None."""
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                _libc = libc
            except (OSError, AttributeError):  # musl and others have neither
                pass
    return _libc or None


def bound_allocator() -> bool:
    """Cap the arenas once per process; False where the C library is not glibc."""
    global _applied
    if _applied is None:
        libc = _glibc()
        _applied = bool(libc) and libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1
    return bool(_applied)


def release_freed() -> None:
    """Return the arenas' free pages to the OS (a no-op off glibc or before bound_allocator)."""
    if _applied:
        _glibc().malloc_trim(0)
