"""Limits the local Hub enforces and no other test exercised: request-body size (413), reserved
namespaces, and signed upload URLs that expire or are tampered with (403)."""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from huggingface_hub.errors import HfHubHTTPError

from publisher.hub.server.http import JSON_LIMIT
from tests.hub.helpers import Hub


def _conn(hub: Hub) -> http.client.HTTPConnection:
    parts = urlsplit(hub.url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)


def _alive(hub: Hub) -> None:
    assert hub.api().whoami()["name"] == "alice"


def test_a_body_over_the_limit_is_413_whether_announced_or_chunked(hub: Hub) -> None:
    headers = {"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"}
    conn = _conn(hub)
    conn.putrequest("POST", "/api/repos/create")
    for k, v in {**headers, "Content-Length": str(JSON_LIMIT + 1)}.items():
        conn.putheader(k, v)
    conn.endheaders()  # the size is refused from the header: the body is never sent
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status == 413 and f"over {JSON_LIMIT} bytes" in body
    conn.close()

    conn = _conn(hub)
    chunk = b" " * (1 << 20)
    conn.putrequest("POST", "/api/repos/create")
    for k, v in {**headers, "Transfer-Encoding": "chunked"}.items():
        conn.putheader(k, v)
    conn.endheaders()
    try:
        for _ in range((JSON_LIMIT >> 20) + 2):
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the last chunk
    r = conn.getresponse()
    assert r.status == 413 and "over" in r.read().decode()
    conn.close()
    _alive(hub)
    assert not [m.id for m in hub.api().list_models()]  # nothing was created


@pytest.mark.parametrize("namespace", ["api", "models", "datasets", "spaces", "lfs-upload", "API"])
def test_reserved_namespaces_hold_no_repo(hub: Hub, namespace: str) -> None:
    """Nobody gets a repo under a route's name: not a stranger (403), and not a user or org that
    carries the name either (refused when the account is made, or when the repo is)."""
    with pytest.raises(HfHubHTTPError) as err:
        hub.api().create_repo(f"{namespace}/thing")
    assert err.value.response.status_code == 403
    for as_org in (False, True):
        try:
            token = (hub.server.create_token("mallory", "write", orgs=(namespace,)) if as_org
                     else hub.server.create_token(namespace, "write"))
        except Exception as refused:  # the account name itself is refused: nothing to create
            assert "reserved" in str(refused) or "name" in str(refused)
            continue
        with pytest.raises(HfHubHTTPError) as err:
            hub.api(token).create_repo(f"{namespace}/thing")
        assert err.value.response.status_code == 400 and "reserved" in str(err.value)
    _alive(hub)
    assert not [m.id for m in hub.api().list_models()]


def _upload_url(hub: Hub, data: bytes) -> str:
    """The signed PUT URL the LFS batch API hands out for ``data`` in alice/limits."""
    hub.api().create_repo("alice/limits", exist_ok=True)
    oid = hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(
        f"{hub.url}/alice/limits.git/info/lfs/objects/batch",
        data=json.dumps({"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}).encode(),
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/vnd.git-lfs+json",
                 "Accept": "application/vnd.git-lfs+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        objects = json.loads(r.read())["objects"]
    return str(objects[0]["actions"]["upload"]["href"])


def _put(url: str, data: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_signed_upload_urls_expire_and_cannot_be_forged(hub: Hub) -> None:
    data = b"weights " * 1000
    hub.server.app.signer.ttl_s = -1  # every URL signed from now on is already past its expiry
    status, body = _put(_upload_url(hub, data), data)
    assert status == 403 and "expired" in body

    hub.server.app.signer.ttl_s = 3600
    good = _upload_url(hub, data)
    mac = good.rstrip("/").rsplit(".", 1)[1]  # .../lfs-upload/<payload>.<mac>
    assert len(mac) == 40, good
    forged = good[: -len(mac)] + ("0" if mac[0] != "0" else "1") + mac[1:]
    assert _put(forged, data)[0] == 403
    status, _ = _put(good, data)
    assert status in (200, 201), status
    _alive(hub)
