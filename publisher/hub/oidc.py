"""Trusted publishing from GitHub Actions: no stored ``HF_TOKEN``, one short-lived token per repo.

When the job may mint OIDC ID tokens (``permissions: id-token: write`` sets
``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``), ``publish``
asks GitHub for an ID token with the Hub's audience and exchanges it at the Hub's
``POST /oauth/token`` (RFC 8693; huggingface/hub-docs ``docs/hub/trusted-publishers.md``)
for a one-hour token scoped to each target repo. Every call about that repo then carries
its own token (``RepoScopedApi``). ``HF_TOKEN`` (or the stored login) is the fallback
when no ID token can be had or the Hub refuses the exchange. ``PUBLISHER_TRUSTED_PUBLISHING=0``
turns the exchange off; ``PUBLISHER_OIDC_AUDIENCE`` changes the audience asked for.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from publisher.errors import HubError, PublishError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
HUB_AUDIENCE = "https://huggingface.co"
TIMEOUT_S = 30
REFRESH_S = 45 * 60  # the Hub's tokens expire after 60 minutes


def enabled() -> bool:
    """True in a job that may mint ID tokens, unless ``PUBLISHER_TRUSTED_PUBLISHING=0``."""
    if os.environ.get("PUBLISHER_TRUSTED_PUBLISHING", "1").lower() in ("0", "false", "no"):
        return False
    return bool(os.environ.get(REQUEST_URL) and os.environ.get(REQUEST_TOKEN))


def _read_json(req: urllib.request.Request, what: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            data = json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read())
        except ValueError:
            body = {}
        detail = body.get("error_description") or body.get("error") or e.reason if isinstance(body, dict) else e.reason
        raise PublishError(f"{what}: HTTP {e.code} ({detail})",
                           fix="configure a trusted publisher for the repo on the Hub, or set HF_TOKEN") from None
    except (OSError, ValueError) as e:
        raise HubError(f"{what}: {e}", fix="retry, or set HF_TOKEN") from None
    if not isinstance(data, dict):
        raise HubError(f"{what}: the answer is not a JSON object")
    return data


def id_token(audience: str | None = None) -> str:
    """An ID token from GitHub Actions' OIDC provider for ``audience`` (the Hub's by default)."""
    url, bearer = os.environ.get(REQUEST_URL, ""), os.environ.get(REQUEST_TOKEN, "")
    aud = audience or os.environ.get("PUBLISHER_OIDC_AUDIENCE") or HUB_AUDIENCE
    sep = "&" if "?" in url else "?"
    req = urllib.request.Request(f"{url}{sep}audience={quote(aud, safe='')}",
                                 headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"})
    value = _read_json(req, "requesting an OIDC ID token from GitHub Actions").get("value")
    if not isinstance(value, str) or not value:
        raise HubError("GitHub Actions returned no ID token", fix="give the job `permissions: id-token: write`")
    return value


def exchange(endpoint: str, subject_token: str, resource: str) -> str:
    """The Hub token for ``resource`` (a repo id; ``datasets/…``/``spaces/…`` for those)."""
    body = json.dumps({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "subject_token": subject_token,
        "resource": resource,
    }).encode()
    req = urllib.request.Request(f"{endpoint.rstrip('/')}/oauth/token", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    token = _read_json(req, f"trusted publishing to {resource}").get("access_token")
    if not isinstance(token, str) or not token:
        raise HubError(f"trusted publishing to {resource}: the Hub returned no access token")
    return token


def repo_tokens(endpoint: str, repo_ids: Iterable[str]) -> dict[str, str]:
    """One exchanged token per repo (a fresh ID token each: GitHub's are single-audience, short-lived)."""
    return {repo_id: exchange(endpoint, id_token(), repo_id) for repo_id in dict.fromkeys(repo_ids)}


class RepoScopedApi:
    """An ``HfApi`` whose calls about a repo in ``tokens`` (its first argument, or ``repo_id=``)
    carry that repo's token, unless the call passes one itself. Tokens live an hour: one older
    than ``REFRESH_S`` is exchanged again before use (a long streaming build outlives it)."""

    def __init__(self, api: HfApi, tokens: dict[str, str], endpoint: str | None = None) -> None:
        self._api = api
        self._tokens = dict(tokens)
        self._endpoint = endpoint
        self._minted = dict.fromkeys(tokens, time.monotonic())
        self._lock = threading.Lock()

    def token_for(self, repo_id: str) -> str | None:
        """The repo's current token (re-exchanged when old), None for a repo it does not cover."""
        with self._lock:
            if repo_id not in self._tokens:
                return None
            if self._endpoint is not None and time.monotonic() - self._minted[repo_id] > REFRESH_S:
                self._tokens[repo_id] = exchange(self._endpoint, id_token(), repo_id)
                self._minted[repo_id] = time.monotonic()
            return self._tokens[repo_id]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            repo_id = kwargs.get("repo_id", args[0] if args else None)
            if isinstance(repo_id, str) and repo_id in self._tokens and kwargs.get("token") is None:
                kwargs["token"] = self.token_for(repo_id)
            return cast(Callable[..., Any], attr)(*args, **kwargs)

        return call


def scoped_api(api: HfApi, endpoint: str, repo_ids: list[str], fallback_token: str | None,
               log: Callable[[str], None]) -> tuple[HfApi, bool]:
    """``api`` with trusted-publishing tokens for ``repo_ids`` when the job can have them.

    Returns the API to use and whether trusted publishing is in effect. A refused exchange
    falls back to ``fallback_token`` (HF_TOKEN) when there is one, and is an error otherwise.
    """
    if not enabled():
        return api, False
    try:
        tokens = repo_tokens(endpoint, repo_ids)
    except (PublishError, HubError) as e:
        if not fallback_token:
            raise
        log(f"trusted publishing unavailable ({e.what}); using HF_TOKEN")
        return api, False
    log(f"trusted publishing: a repo-scoped token for each of {', '.join(tokens)}")
    return cast("HfApi", RepoScopedApi(api, tokens, endpoint)), True


def token_for(api: HfApi, repo_id: str, default: str | None) -> str | None:
    """The token for calls about ``repo_id`` made outside ``api`` (module functions of the client)."""
    scoped = api.token_for(repo_id) if isinstance(api, RepoScopedApi) else None
    return scoped if scoped is not None else default
