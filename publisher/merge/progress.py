"""The merge's progress bar: tensors done, GB read, GB/s, ETA (rich), or nothing when quiet."""

from __future__ import annotations

import time


class MergeProgress:
    """Rich progress (tensors, GB read, GB/s, ETA) or nothing when quiet."""

    def __init__(self, total_tensors: int, total_read: int, quiet: bool) -> None:
        self.quiet = quiet
        self._bar = None
        if not quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]merging"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[gb]:.2f} GB read"),
                TextColumn("{task.fields[rate]:.2f} GB/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("merge", total=total_tensors, gb=0.0, rate=0.0)
            self._bar.start()
        self._start = time.monotonic()
        self._read = 0

    def advance(self, read_bytes: int) -> None:
        self._read += read_bytes
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._start, 1e-6)
            self._bar.update(self._task, advance=1, gb=self._read / 1e9, rate=self._read / 1e9 / elapsed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
