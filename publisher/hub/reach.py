"""Fail fast when a Hub cannot be reached at all, instead of huggingface_hub's ~24 s of retries.

huggingface_hub retries a refused or unresolvable connection five times with exponential
backoff (1+2+4+8+8 s) and logs a line per try. That is right for a blip in the middle of a
long upload, and wrong for an endpoint that was never reachable: no network, a typo in
``HF_ENDPOINT``, a local server that is not running. So the first contact with each host is
different: its connect timeout is short and a failure to connect raises ``Unreachable``
(not a network error, so nothing retries it). Once a host has answered, its later failures
are huggingface_hub's to retry as usual.

``install()`` makes huggingface_hub's shared HTTP client behave this way; the CLI calls it.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from publisher.errors import HubError, SourceError

FIRST_CONNECT_TIMEOUT = 3.0  # seconds; a Hub that takes longer to accept a connection is down
WHAT_TO_DO = (
    "set HF_ENDPOINT to a reachable Hub, use a local model folder, or run `publisher hub serve` "
    "and point HF_ENDPOINT at it"
)

_reached: set[tuple[str, str, int | None]] = set()
_lock = threading.Lock()
_installed = False


# The repo a Hub API or file URL is about: /api/models/org/name/..., /org/name/resolve/...
_REPO_IN_PATH = re.compile(r"^/(?:api/(?:models|datasets|spaces)/|datasets/|spaces/)?([\w.-]+/[\w.-]+)(?:/|$)")


class Unreachable(HubError):
    """No connection could be made to a host this process never reached."""

    def __init__(self, base_url: str, reason: str, repo_id: str | None = None) -> None:
        self.base_url = base_url
        self.reason = reason
        self.repo_id = repo_id
        about = f" for {repo_id}" if repo_id else ""
        super().__init__(f"cannot reach {base_url}{about} ({reason})", fix=WHAT_TO_DO)


def repo_of(path: str) -> str | None:
    """The ``org/name`` a request path names, if any."""
    m = _REPO_IN_PATH.match(path)
    if m is None or m.group(1).split("/")[0] in ("api", "datasets", "spaces"):
        return None
    return m.group(1)


def unreachable_parent(err: Unreachable, repo_id: str, where: str) -> SourceError:
    """The one line for a parent whose Hub cannot be reached: the recipe's file:line, the repo."""
    return SourceError(f"cannot reach {err.base_url} to fetch {repo_id} ({err.reason})", where=where, fix=WHAT_TO_DO, exit_code=1)


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if type(err).__name__ == "ConnectTimeout":
        return f"no answer within {FIRST_CONNECT_TIMEOUT:.0f}s"
    return text[:200]


def _client_class() -> type[Any]:
    import httpx2

    class FirstContactClient(httpx2.Client):
        """huggingface_hub's client, with the first connection to each host failing fast."""

        def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
            key = (request.url.scheme, request.url.host, request.url.port)
            with _lock:
                known = key in _reached
            if known:
                return super().send(request, **kwargs)
            timeout = dict(request.extensions.get("timeout") or {})
            if timeout.get("connect") is None or timeout["connect"] > FIRST_CONNECT_TIMEOUT:
                timeout["connect"] = FIRST_CONNECT_TIMEOUT
                for name in ("read", "write", "pool"):
                    timeout.setdefault(name, None)
                request.extensions["timeout"] = timeout
            try:
                response = super().send(request, **kwargs)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:
                base = f"{request.url.scheme}://{request.url.netloc.decode()}"
                raise Unreachable(base, _reason(e), repo_of(request.url.path)) from None
            with _lock:
                _reached.add(key)
            return response

    return FirstContactClient


def install() -> None:
    """Make huggingface_hub's shared client fail fast on first contact (idempotent)."""
    global _installed
    if _installed:
        return
    try:
        from huggingface_hub.utils import set_client_factory
        from huggingface_hub.utils._http import hf_request_event_hook
    except ImportError:  # another huggingface_hub layout: keep its own client
        return
    cls = _client_class()

    def factory() -> Any:
        return cls(event_hooks={"request": [hf_request_event_hook]}, follow_redirects=True, timeout=None)

    set_client_factory(factory)
    _installed = True
