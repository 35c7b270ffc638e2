"""Helpers shared by the benchmark scripts: timing a command, page-cache state, sizes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

GIB = 1 << 30


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS GiB, CPU seconds) of a command, from /usr/bin/time -v."""
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    err = proc.stderr
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", err).group(1)) for k in ("User", "System"))  # type: ignore[union-attr]
    return wall, rss_kb * 1024 / GIB, cpu


def drop_caches(parents: Path) -> str:
    """Start each tool from the same page-cache state: dropped if the kernel lets us, else warmed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return "cold page cache (dropped)"
    except OSError:
        for f in sorted(parents.rglob("*.safetensors")):
            with f.open("rb") as fh:
                while fh.read(64 << 20):
                    pass
        return "page cache after the same warm-up read"


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*.safetensors"))
