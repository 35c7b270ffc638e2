"""Malformed request bodies get a 4xx with a message, never a 500, and never a partial commit.

A live server (one per module: hypothesis runs many examples against it), raw HTTP so any
bytes can be sent. The oracle for create and settings is independent of the server's
schemas: a body may only succeed if it is one a Hub client could send.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.hub.ids import is_repo_id
from publisher.hub.server import LocalHub

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)
DEEP = ("[" * 100_000 + "]" * 100_000).encode()
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Live:
    def __init__(self, hub: LocalHub, token: str) -> None:
        self.hub = hub
        self.token = token

    def send(self, method: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.hub.host, self.hub.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={"Authorization": f"Bearer {self.token}",
                                                           "Content-Type": content_type})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def head(self) -> str:
        status, _, body = self.send("GET", "/api/models/alice/target", b"")
        assert status == 200
        return str(json.loads(body)["sha"])

    def meta(self) -> tuple[bool, Any]:
        _, _, body = self.send("GET", "/api/models/alice/target", b"")
        info = json.loads(body)
        return info["private"], info["gated"]

    def repos(self) -> set[str]:
        _, _, body = self.send("GET", "/api/models?author=alice", b"")
        return {m["id"] for m in json.loads(body)}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root: Path = tmp_path_factory.mktemp("fuzz-hub")
    with LocalHub(root) as hub:
        server = Live(hub, hub.create_token("alice", orgs=("acme",)))
        status, _, text = server.send("POST", "/api/repos/create", json.dumps({"name": "target"}).encode())
        assert status == 200, text
        yield server


def assert_refused(status: int, headers: dict[str, str], body: bytes, live: Live) -> None:
    assert 400 <= status < 500, (status, body[:300])
    message = json.loads(body).get("error")
    assert isinstance(message, str) and message.strip(), body[:300]
    assert headers.get("X-Error-Message")
    status, _, _ = live.send("GET", "/api/whoami-v2", b"")
    assert status == 200  # the server is alive and serving


def ndjson(lines: list[Any]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


HEADER = {"key": "header", "value": {"summary": "fuzz", "description": ""}}
KINDS = ["header", "file", "lfsFile", "deletedFile", "deletedFolder", "copy", 3, None]


def _plausible_op(line: Any) -> bool:
    """A line a client could send that would change the repo: only those may be accepted."""
    return (isinstance(line, dict) and line.get("key") in KINDS[:5] and isinstance(line.get("value"), dict)
            and isinstance(line["value"].get("path"), str))


MALFORMED = [
    ("commit", ndjson([{"key": "header", "value": None}])),
    ("commit", ndjson([{"key": "header", "value": "summary"}])),
    ("commit", ndjson([{"key": "header", "value": ["summary"]}])),
    ("commit", ndjson([HEADER, {"key": "file", "value": {"path": "a.txt", "content": 5, "encoding": "base64"}}])),
    ("commit", ndjson([HEADER]) + DEEP + b"\n"),
    ("commit", ndjson([HEADER, {"key": "file", "value": None}])),
    ("create", DEEP),
    ("preupload", DEEP),
    ("preupload", json.dumps({"files": [{"path": "a.bin", "sample": 5, "size": 1}]}).encode()),
    ("settings", DEEP),
    ("settings", json.dumps({"private": "yes"}).encode()),
    ("settings", json.dumps({"discussionsDisabled": True}).encode()),
    ("create", json.dumps({"name": "x", "private": 1}).encode()),
]
ROUTES = {
    "commit": ("POST", "/api/models/alice/target/commit/main", "application/x-ndjson"),
    "preupload": ("POST", "/api/models/alice/target/preupload/main", "application/json"),
    "create": ("POST", "/api/repos/create", "application/json"),
    "settings": ("PUT", "/api/models/alice/target/settings", "application/json"),
}


@pytest.mark.parametrize(("route", "body"), MALFORMED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(MALFORMED)])
def test_known_malformed_bodies_get_400(live: Live, route: str, body: bytes) -> None:
    method, path, ctype = ROUTES[route]
    before, repos, meta = live.head(), live.repos(), live.meta()
    status, headers, text = live.send(method, path, body, ctype)
    assert status == 400, text[:300]
    assert_refused(status, headers, text, live)
    assert (live.head(), live.repos(), live.meta()) == (before, repos, meta)


@FUZZ
@given(lines=st.lists(JSON | st.fixed_dictionaries({"key": st.sampled_from(KINDS), "value": JSON}), min_size=1, max_size=5),
       with_header=st.booleans(), garbage=st.binary(max_size=20))
def test_commit_refuses_arbitrary_ndjson(live: Live, lines: list[Any], with_header: bool, garbage: bytes) -> None:
    if any(_plausible_op(line) for line in lines):
        lines = [line for line in lines if not _plausible_op(line)] or [None]
    body = ndjson(([HEADER] if with_header else []) + lines)
    if garbage and not with_header:
        body += garbage + b"\n"
    before = live.head()
    status, headers, text = live.send("POST", "/api/models/alice/target/commit/main", body, "application/x-ndjson")
    assert_refused(status, headers, text, live)
    assert live.head() == before  # no partial commit


@FUZZ
@given(body=JSON | st.fixed_dictionaries({"files": JSON}) | st.fixed_dictionaries(
    {"files": st.lists(st.fixed_dictionaries({"path": JSON, "sample": JSON, "size": JSON}), min_size=1, max_size=3)}))
def test_preupload_refuses_arbitrary_json(live: Live, body: Any) -> None:
    files = body.get("files") if isinstance(body, dict) else None
    plausible = isinstance(files, list) and set(body) <= {"files", "gitIgnore"} and all(
        isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sample"), str)
        and type(f.get("size")) is int for f in files)
    status, headers, text = live.send("POST", "/api/models/alice/target/preupload/main", json.dumps(body).encode())
    if status == 200:
        assert plausible, body
    else:
        assert_refused(status, headers, text, live)


def _valid_create(body: Any) -> bool:
    if not isinstance(body, dict) or not set(body) <= {"name", "organization", "type", "private", "visibility", "sdk"}:
        return False
    name, org = body.get("name"), body.get("organization")
    return (isinstance(name, str) and is_repo_id(f"alice/{name}", allow_single=False)
            and org in (None, "alice", "acme") and body.get("type") in (None, "model", "dataset", "space")
            and body.get("private") in (None, True, False) and type(body.get("private")) in (type(None), bool)
            and body.get("visibility") in (None, "public", "private")
            and not ("private" in body and "visibility" in body and body["private"] is not None and body["visibility"] is not None))


@FUZZ
@given(body=JSON | st.fixed_dictionaries({}, optional={
    "name": JSON | st.sampled_from(["ok-name", "x\n", "..", "a/b", ""]), "organization": JSON | st.just("alice"),
    "private": JSON, "visibility": JSON | st.just("private"), "type": JSON | st.just("model")}))
def test_create_refuses_arbitrary_json(live: Live, body: Any) -> None:
    before = live.repos()
    status, headers, text = live.send("POST", "/api/repos/create", json.dumps(body).encode())
    if 200 <= status < 300:
        assert _valid_create(body), body
        live.send("DELETE", "/api/repos/delete", json.dumps({k: v for k, v in body.items()
                                                              if k in ("name", "organization", "type")}).encode())
    else:
        assert_refused(status, headers, text, live)
        assert live.repos() == before


def _valid_settings(body: Any) -> bool:
    if not isinstance(body, dict) or not body or not set(body) <= {"private", "visibility", "gated"}:
        return False
    return (type(body.get("private")) in (type(None), bool) and body.get("visibility") in (None, "public", "private")
            and (body.get("gated") in (None, "auto", "manual") or body.get("gated") is False)
            and not (body.get("private") is not None and body.get("visibility") is not None)
            and any(v is not None for v in body.values()))


@FUZZ
@given(body=JSON | st.fixed_dictionaries({}, optional={
    "private": JSON, "visibility": JSON | st.sampled_from(["public", "private"]),
    "gated": JSON | st.sampled_from(["auto", "manual", False])}))
def test_settings_refuse_arbitrary_json(live: Live, body: Any) -> None:
    before = live.meta()
    status, headers, text = live.send("PUT", "/api/models/alice/target/settings", json.dumps(body).encode())
    if status == 200:
        assert _valid_settings(body), body
        live.send("PUT", "/api/models/alice/target/settings", json.dumps({"private": False, "gated": False}).encode())
    else:
        assert_refused(status, headers, text, live)
        assert live.meta() == before


def test_a_valid_commit_still_works(live: Live) -> None:
    body = ndjson([HEADER, {"key": "file", "value": {"path": "ok.txt", "content": base64.b64encode(b"ok").decode(),
                                                     "encoding": "base64"}}])
    before = live.head()
    status, _, text = live.send("POST", "/api/models/alice/target/commit/main", body, "application/x-ndjson")
    assert status == 200, text
    assert live.head() != before
