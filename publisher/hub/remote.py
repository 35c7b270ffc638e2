"""Talking to a Hub through huggingface_hub: endpoint and token, retries, errors without secrets.

The endpoint and token are resolved per call (``HF_ENDPOINT`` is read now, not at import,
and passed to ``HfApi(endpoint=...)``), so one process can publish to several servers.
huggingface_hub already retries its uploads; ``Retry`` covers the calls it does not retry
(commit, create_repo, tag) where a retry is safe, and the reads (and, in a streaming release,
the uploads too: ``backoff.py``). Its total wait is bounded, so a persistent failure is quick.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

from publisher.errors import HubError, PublishError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


def resolve_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def resolve_token(token: str | None = None) -> str | None:
    """``token`` or huggingface_hub's own choice: ``HF_TOKEN``, then the stored login."""
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def make_api(endpoint: str, token: str | None) -> HfApi:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token if token else False, library_name="publisher")


@contextmanager
def client_settings(endpoint: str) -> Iterator[None]:
    """huggingface_hub settings this endpoint needs, for the duration of a publish.

    Off huggingface.co the publisher uploads by classic LFS, not Xet: every Hub-compatible
    server speaks it, and it is one streamed PUT per file where the local Hub, which speaks
    both, keeps a Xet upload twice (its xorbs and the rebuilt file). ``HF_HUB_OFFLINE`` (which blocks every request of the client) is about the Hub, so a
    loopback server stays reachable. The client reads both at import and checks the
    constants at call time, so the constants are set here and restored afterwards.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_DISABLE_XET, constants.HF_HUB_OFFLINE
    if constants.HF_HUB_OFFLINE and not is_loopback(endpoint):
        raise PublishError(
            f"HF_HUB_OFFLINE is set: huggingface_hub will not reach {endpoint}",
            fix="unset HF_HUB_OFFLINE to publish",
        )
    try:
        if not _is_huggingface_co(endpoint):
            constants.HF_HUB_DISABLE_XET = True
        if is_loopback(endpoint):
            constants.HF_HUB_OFFLINE = False
        yield
    finally:
        constants.HF_HUB_DISABLE_XET, constants.HF_HUB_OFFLINE = saved


class _Online:
    """Nested and concurrent ``loopback_online`` blocks (parents are read in parallel): the
    first in turns HF_HUB_OFFLINE off, the last out restores it."""

    lock = threading.Lock()
    depth = 0
    saved: bool = False


@contextmanager
def loopback_online(endpoint: str) -> Iterator[None]:
    """Let huggingface_hub reach a loopback server even under ``HF_HUB_OFFLINE`` (downloads)."""
    from huggingface_hub import constants

    if not is_loopback(endpoint):
        yield
        return
    with _Online.lock:
        if _Online.depth == 0:
            _Online.saved = constants.HF_HUB_OFFLINE
        _Online.depth += 1
        constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        with _Online.lock:
            _Online.depth -= 1
            if _Online.depth == 0:
                constants.HF_HUB_OFFLINE = _Online.saved


def _host(endpoint: str) -> str:
    return urlparse(endpoint).hostname or ""


def is_loopback(endpoint: str) -> bool:
    host = _host(endpoint)
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _is_huggingface_co(endpoint: str) -> bool:
    host = _host(endpoint).lower()
    return host == "huggingface.co" or host.endswith(".huggingface.co") or host == "hf.co"


def scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def status_of(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def is_transient(err: BaseException) -> bool:
    """429/5xx answers and dropped or refused connections: worth another try."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(err, HfHubHTTPError):
        return status_of(err) in RETRY_STATUSES
    if isinstance(err, OfflineModeIsEnabled):
        return False
    return isinstance(err, httpx2.TransportError | ConnectionError | TimeoutError)


def retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class Retry:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s… capped, ``attempts`` tries in all, and
    at most ``budget_s`` of waiting in all (a long ``Retry-After`` ends the tries sooner)."""

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 8.0
    budget_s: float = 15.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn: Callable[[], T], what: str, token: str | None = None) -> T:
        delay, waited = self.base_s, 0.0
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as err:
                if not is_transient(err):
                    raise
                wait = retry_after(err)
                time_s = min(self.max_s, wait if wait is not None else delay * (0.5 + random.random()))
                if attempt == self.attempts or waited + time_s > self.budget_s:
                    raise HubError(
                        f"{what} failed {attempt} times, last: {describe(err, token)}",
                        fix="the remote state is unchanged or whole; re-run the same command",
                    ) from None
                self.sleep(time_s)
                waited += time_s
                delay = min(self.max_s, delay * 2)
        raise AssertionError("unreachable")


def describe(err: BaseException, token: str | None = None) -> str:
    """One line for an exception from huggingface_hub/httpx2, the token masked if it ever leaks in."""
    status = status_of(err)
    server = getattr(err, "server_message", None)
    lines = str(err).splitlines()
    text = server or (lines[0] if lines else type(err).__name__)
    if status is not None and str(status) not in text:
        text = f"HTTP {status}: {text}"
    return scrub(" ".join(text.split()), token)

