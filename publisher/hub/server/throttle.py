"""A bandwidth limit per direction for benchmarks: the local Hub made as slow as a real network.

On a CI runner the Hub is across a network; on one machine it is a loopback socket, and the
streaming release's time target (overlap of reads and uploads) can only be measured with the
network as the slower side. ``publisher hub serve --max-rate-down 60MB --max-rate-up 60MB``
gives each direction one token bucket shared by all connections: file bodies the server sends
(resolve and Range downloads, Xet and git streams) take from ``down``, request bodies it reads
(LFS and Xet uploads, and the small JSON ones) from ``up``. Off by default.

A take reserves its bytes at once and may drive the bucket into debt; the caller then sleeps
until the debt is paid. Concurrent connections thus share the rate in arrival order, and a
reservation never waits for a later one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 1 << 20  # bytes a throttled sender or reader moves between two takes


class TokenBucket:
    """``rate`` bytes per second, at most ``burst`` bytes ahead; ``clock`` and ``sleep`` injectable."""

    def __init__(
        self,
        rate: float,
        burst: float = CHUNK,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, nbytes: int) -> float:
        """Take ``nbytes`` now; the seconds the caller must wait before moving them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= nbytes
            return max(0.0, -self._tokens / self.rate)

    def take(self, nbytes: int) -> None:
        """Block until ``nbytes`` may move."""
        wait = self.reserve(nbytes)
        if wait > 0:
            self._sleep(wait)


@dataclass(frozen=True)
class Limits:
    """The server's two buckets (None: that direction is not limited)."""

    down: TokenBucket | None = None  # bytes the server sends
    up: TokenBucket | None = None  # bytes the server receives

    @classmethod
    def rates(cls, down: int | None, up: int | None) -> Limits:
        return cls(TokenBucket(down) if down else None, TokenBucket(up) if up else None)
