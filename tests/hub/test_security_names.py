"""Names, ownership, handed-out URLs and the connection bound of the local Hub (issue 12 §3)."""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from publisher.hub.ids import is_repo_id
from publisher.hub.server import LocalHub, Settings
from publisher.hub.server.accounts import NameTaken
from publisher.hub.server.auth import TokenStore
from tests.hub.helpers import Hub
from tests.hub.test_cli import _cli
from tests.hub.test_security import _raw


def test_user_names_are_unique_ignoring_case(hub: Hub) -> None:
    bob = HfApi(endpoint=hub.url, token=hub.server.create_token("bob"))
    bob.create_repo("bob/secret", private=True)
    with pytest.raises(NameTaken, match="taken by 'bob'"):
        hub.server.create_token("BOB")
    with pytest.raises(NameTaken):
        hub.server.create_token("Alice")
    made = _cli("hub", "token", "create", "BOB", "--root", str(hub.root))
    assert made.returncode == 2 and "taken by 'bob'" in made.stderr and "Traceback" not in made.stderr
    assert "BOB" not in TokenStore(hub.root).users()
    bob.create_repo("bob/more")  # the exact owner keeps every right


def test_ownership_is_exact_even_for_names_that_collide(hub: Hub) -> None:
    """A root written before names were unique may hold ``bob`` and ``BOB``: BOB owns nothing of bob's."""
    bob_token = hub.server.create_token("bob")
    bob = HfApi(endpoint=hub.url, token=bob_token)
    bob.create_repo("bob/secret", private=True)
    bob.upload_file(path_or_fileobj=b"classified", path_in_repo="data.txt", repo_id="bob/secret")
    store = TokenStore(hub.root)
    legacy = json.loads((hub.root / "tokens.json").read_text())
    legacy["users"]["BOB"] = {"orgs": []}
    intruder = "hf_" + "legacyBOBtoken" + "0" * 21  # built here: no token-shaped literal in the repo
    legacy["tokens"].append({"name": "BOB-write", "user": "BOB", "scope": "write",
                             "sha256": hashlib.sha256(intruder.encode()).hexdigest(), "created": "2026-01-01"})
    (hub.root / "tokens.json").write_text(json.dumps(legacy))
    assert store.lookup(intruder) is not None
    mallory = HfApi(endpoint=hub.url, token=intruder)
    with pytest.raises(RepositoryNotFoundError):
        mallory.model_info("bob/secret")
    with pytest.raises(HfHubHTTPError):
        mallory.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="bob/secret")
    with pytest.raises(HfHubHTTPError) as e:
        mallory.create_repo("bob/intruder")
    assert e.value.response.status_code == 403
    assert bob.list_repo_files("bob/secret") == [".gitattributes", "data.txt"]


def test_an_org_cannot_take_a_users_name_and_vice_versa(hub: Hub) -> None:
    alice = hub.api()
    alice.create_repo("alice/private-thing", private=True)
    with pytest.raises(NameTaken, match="already a user"):
        hub.server.create_token("mallory", orgs=("alice",))
    with pytest.raises(NameTaken, match="already a user"):
        hub.server.create_token("mallory", orgs=("ALICE",))
    with pytest.raises(NameTaken, match="already an organization"):
        hub.server.create_token("acme")
    with pytest.raises(NameTaken, match="taken by 'acme'"):
        hub.server.create_token("mallory", orgs=("Acme",))
    made = _cli("hub", "token", "create", "mallory", "--org", "alice", "--root", str(hub.root))
    assert made.returncode == 2 and "already a user" in made.stderr, made.stderr
    assert "mallory" not in TokenStore(hub.root).users()
    # joining an existing org under its exact name still works
    carol = HfApi(endpoint=hub.url, token=hub.server.create_token("carol", orgs=("acme",)))
    carol.create_repo("acme/carols")


@pytest.mark.parametrize("bad", ["x\n", "x\r\n", "\nx", "x\x00"])
def test_names_with_a_trailing_newline_are_refused(hub: Hub, bad: str) -> None:
    assert not is_repo_id(f"alice/{bad}") and not is_repo_id(f"{bad}/x")
    for body in ({"name": bad, "organization": "alice"}, {"name": "ok", "organization": f"alice{bad}"}):
        status, _, text = _raw(hub, "POST", "/api/repos/create", json.dumps(body).encode(), hub.token)
        assert status == 400 and b"invalid repo" in text, text
    with pytest.raises(ValueError):
        hub.server.create_token(f"eve{bad}")
    status, _, _ = _raw(hub, "GET", "/api/models/alice/" + urllib.parse.quote(f"x{bad}", safe=""))
    assert status in (400, 404)
    hub.api().create_repo("alice/p")
    oid = "a" * 64
    lines = [{"key": "header", "value": {"summary": "nl"}},
             {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid + "\n", "size": 1}}]
    status, _, _ = _raw(hub, "POST", "/api/models/alice/p/commit/main",
                        "".join(json.dumps(x) + "\n" for x in lines).encode(), hub.token)
    assert status == 400
    assert hub.api().list_models(author="alice") and all("\n" not in m.id for m in hub.api().list_models())


def _batch(hub: Hub, host: str) -> tuple[str, str]:
    data = b"bytes to upload" * 10
    body = {"operation": "upload", "transfers": ["basic"],
            "objects": [{"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}]}
    status, _, text = _raw(hub, "POST", "/alice/urls.git/info/lfs/objects/batch", json.dumps(body).encode(),
                           hub.token, {"Host": host})
    assert status == 200, text
    actions = json.loads(text)["objects"][0]["actions"]
    return actions["upload"]["href"], actions["verify"]["href"]


def test_handed_out_urls_come_from_the_configured_public_url(hub: Hub, tmp_path: Path) -> None:
    hub.api().create_repo("alice/urls")
    upload, verify = _batch(hub, "evil.example:666")
    assert upload.startswith(hub.url + "/lfs-upload/") and verify.startswith(hub.url + "/")
    status, _, text = _raw(hub, "POST", "/api/repos/create", json.dumps({"name": "other"}).encode(), hub.token,
                           {"Host": "evil.example"})
    assert status == 200 and json.loads(text)["url"] == f"{hub.url}/alice/other"
    with LocalHub(tmp_path / "pub", settings=Settings(public_url="https://hub.example.org/")) as server:
        token = server.create_token("alice")
        other = Hub(server, server.url, token, tmp_path / "pub")
        status, _, text = _raw(other, "POST", "/api/repos/create", json.dumps({"name": "urls"}).encode(), token)
        assert status == 200 and json.loads(text)["url"] == "https://hub.example.org/alice/urls"
        upload, verify = _batch(other, f"127.0.0.1:{server.port}")
        assert server.public_url == "https://hub.example.org"
        assert upload.startswith("https://hub.example.org/lfs-upload/")
        assert verify == "https://hub.example.org/alice/urls.git/info/lfs/objects/verify"


def _http_get(url: str, path: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.settimeout(30)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_connections_are_bounded(tmp_path: Path) -> None:
    settings = Settings(max_connections=2, connection_wait_s=0.2)
    with LocalHub(tmp_path / "root", settings=settings) as server:
        host, port = server.host, server.port
        idle = [socket.create_connection((host, port), timeout=30) for _ in range(2)]
        try:
            for s in idle:  # each holds a thread: a request line that never ends
                s.sendall(b"GET /api/models HTTP/1.1\r\n")
            refused = _http_get(server.url, "/api/models")
            assert refused.startswith(b"HTTP/1.1 503") and b"all 2 connections are in use" in refused
            assert b"Retry-After: 1" in refused
            assert server._server is not None
            server._server.wait_s = 30.0  # the next connection waits for the slot a close frees
            idle.pop().close()
            served = _http_get(server.url, "/api/models")
            assert served.startswith(b"HTTP/1.1 200"), served[:200]
        finally:
            for s in idle:
                s.close()
