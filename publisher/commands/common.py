"""Argument helpers shared by commands."""

from __future__ import annotations

import argparse
import os
import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """'5GB', '500MB', '2GiB', '123' -> bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 5GB, 500MB, 2GiB)")
    unit = (m.group(2) or "").lower().removesuffix("b")
    return int(float(m.group(1)) * _UNITS[unit])


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="worker threads (default: cores)"
    )


def silence_hub_progress() -> None:
    """``--quiet`` also means huggingface_hub's download and upload bars."""
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()


def add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat recipe warnings (keys and parameters that have no effect) as errors",
    )
