"""One retry layer for uploads: huggingface_hub's own backoff turned off, ours kept.

huggingface_hub retries every LFS batch, PUT and verify call itself (5 retries, 1 s to 8 s:
23 s a call), and ``Retry`` retries the whole upload around it, so a persistent 5xx used to
take ~46 s before its one-line error. Inside ``our_retries_only`` the client's upload calls
try once and ``Retry`` (bounded total backoff) is the only policy: transient 500/429/drops are
still retried, a persistent failure ends within ``Retry.budget_s`` of waiting.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_MODULES = ("huggingface_hub.lfs", "huggingface_hub._commit_api")  # where the upload calls look it up
_lock = threading.Lock()
_depth = 0
_saved: dict[str, Callable[..., Any]] = {}


def _single_try(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs["max_retries"] = 0
        return original(*args, **kwargs)

    return call


@contextmanager
def our_retries_only() -> Iterator[None]:
    """huggingface_hub's upload calls without their own retries, for the duration (re-entrant)."""
    import importlib

    global _depth
    with _lock:
        if _depth == 0:
            for name in _MODULES:
                module = importlib.import_module(name)
                original = getattr(module, "http_backoff", None)
                if original is not None:
                    _saved[name] = original
                    module.http_backoff = _single_try(original)  # type: ignore[attr-defined]
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name, original in _saved.items():
                    importlib.import_module(name).http_backoff = original  # type: ignore[attr-defined]
                _saved.clear()
