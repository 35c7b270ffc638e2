"""Access control and input validation of the local Hub, through the real client and raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.hub.helpers import Hub


def _raw(hub: Hub, method: str, path: str, body: bytes | None = None, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(hub.url + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_private_repos_are_invisible_without_access(hub: Hub, tmp_path: Path) -> None:
    alice = hub.api()
    alice.create_repo("alice/secret", private=True)
    alice.upload_file(path_or_fileobj=b"classified", path_in_repo="data.txt", repo_id="alice/secret")
    bob = HfApi(endpoint=hub.url, token=hub.server.create_token("bob"))
    anonymous = HfApi(endpoint=hub.url, token=False)
    for api in (bob, anonymous):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/secret")
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_refs("alice/secret")
        assert not api.repo_exists("alice/secret")
        assert "alice/secret" not in {m.id for m in api.list_models(author="alice")}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/secret", "data.txt", endpoint=hub.url, token=False, cache_dir=tmp_path / "c")
    status, headers, _ = _raw(hub, "GET", "/alice/secret/resolve/main/data.txt")
    assert status == 401 and headers["X-Error-Code"] == "RepoNotFound"
    read_only = HfApi(endpoint=hub.url, token=hub.server.create_token("alice", "read"))
    assert read_only.model_info("alice/secret").private is True
    assert "alice/secret" in {m.id for m in alice.list_models(author="alice")}


def test_read_token_cannot_write(hub: Hub) -> None:
    hub.api().create_repo("alice/pub")
    reader = HfApi(endpoint=hub.url, token=hub.server.create_token("alice", "read"))
    for action in (
        lambda: reader.create_repo("alice/new"),
        lambda: reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/pub"),
        lambda: reader.create_tag("alice/pub", tag="v1"),
        lambda: reader.delete_repo("alice/pub"),
    ):
        with pytest.raises(HfHubHTTPError) as e:
            action()
        assert e.value.response.status_code == 403 and "read scope" in str(e.value)
    assert hub.api().list_repo_files("alice/pub") == [".gitattributes"]


def test_namespaces_are_owned(hub: Hub) -> None:
    alice = hub.api()
    alice.create_repo("alice/pub")
    alice.create_repo("acme/team-model")  # alice is a member of acme
    bob = HfApi(endpoint=hub.url, token=hub.server.create_token("bob"))
    bob.create_repo("bob/mine")
    for action in (
        lambda: bob.create_repo("alice/intruder"),
        lambda: bob.create_repo("acme/intruder"),
        lambda: bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/pub"),
        lambda: bob.create_tag("alice/pub", tag="v9"),
        lambda: bob.delete_repo("alice/pub"),
    ):
        with pytest.raises(HfHubHTTPError) as e:
            action()
        assert e.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=hub.url, token="hf_not_a_real_token_at_all_000000").model_info("alice/pub")
    assert e.value.response.status_code == 401


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b.txt", "/etc/passwd", "a//b", ".git/config",
                                  "x/.git/hooks/pre-commit", "bad\x00name", "tab\tname", "C:/win.txt", "a\\b"])
def test_malicious_paths_are_refused(hub: Hub, path: str) -> None:
    hub.api().create_repo("alice/p")
    header = {"key": "header", "value": {"summary": "evil", "description": ""}}
    line = {"key": "file", "value": {"path": path, "content": base64.b64encode(b"x").decode(), "encoding": "base64"}}
    body = (json.dumps(header) + "\n" + json.dumps(line) + "\n").encode()
    status, _, text = _raw(hub, "POST", "/api/models/alice/p/commit/main", body, hub.token,
                           {"Content-Type": "application/x-ndjson"})
    assert status == 400, text
    status, _, _ = _raw(hub, "POST", "/api/models/alice/p/preupload/main",
                        json.dumps({"files": [{"path": path, "sample": "", "size": 1}]}).encode(), hub.token)
    assert status == 400
    assert hub.api().list_repo_files("alice/p") == [".gitattributes"]


@pytest.mark.parametrize("repo_id", ["alice/..", "alice/x.git", "alice/--x", "al..ice/x", "alice/-x", "alice/" + "x" * 97])
def test_malformed_repo_ids_are_refused(hub: Hub, repo_id: str) -> None:
    ns, name = repo_id.split("/")
    status, _, _ = _raw(hub, "POST", "/api/repos/create", json.dumps({"name": name, "organization": ns}).encode(), hub.token)
    assert status == 400
    status, _, _ = _raw(hub, "GET", "/api/models/" + "/".join(urllib.parse.quote(p, safe="") for p in (ns, name)))
    assert status in (400, 404)
    assert not (hub.root / "repos" / "models" / ns / f"{name}.git").exists()


def test_traversal_in_urls_reaches_nothing(hub: Hub) -> None:
    hub.api().create_repo("alice/p")
    for path in ("/alice/p/resolve/main/..%2F..%2Fhub-meta.json", "/alice/p/resolve/main/%2E%2E/secret",
                 "/api/models/%2E%2E/%2E%2E/tree/main", "/alice/p/resolve/..%2F..%2F..%2Fsecret/x"):
        status, _, body = _raw(hub, "GET", path)
        assert status in (400, 404), path
        assert b"private" not in body and (hub.root / "secret").read_bytes() not in body


def test_lfs_cannot_reference_another_repos_objects(hub: Hub) -> None:
    alice = hub.api()
    alice.create_repo("alice/secret", private=True)
    data = os.urandom(2000)
    alice.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="alice/secret")
    oid = hashlib.sha256(data).hexdigest()
    bob_token = hub.server.create_token("bob")
    HfApi(endpoint=hub.url, token=bob_token).create_repo("bob/thief")
    lines = [{"key": "header", "value": {"summary": "steal", "description": ""}},
             {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": 2000}}]
    status, _, text = _raw(hub, "POST", "/api/models/bob/thief/commit/main",
                           "".join(json.dumps(x) + "\n" for x in lines).encode(), bob_token)
    assert status == 400 and b"not uploaded" in text
    # the batch API asks bob to upload the bytes himself rather than saying "already there"
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 2000}]}
    status, _, text = _raw(hub, "POST", "/bob/thief.git/info/lfs/objects/batch", json.dumps(batch).encode(), bob_token)
    assert status == 200 and "actions" in json.loads(text)["objects"][0]


def test_uploads_are_verified_and_urls_are_signed(hub: Hub) -> None:
    hub.api().create_repo("alice/p")
    data = b"real bytes" * 100
    oid = hashlib.sha256(data).hexdigest()
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}
    _, _, text = _raw(hub, "POST", "/alice/p.git/info/lfs/objects/batch", json.dumps(batch).encode(), hub.token)
    href = json.loads(text)["objects"][0]["actions"]["upload"]["href"]
    path = href[len(hub.url):]
    status, _, _ = _raw(hub, "PUT", path, b"fake bytes" * 100)
    assert status == 400  # sha256 mismatch
    ticket = path.rsplit("/", 1)[1]
    payload, mac = ticket.split(".")
    forged = path.replace(ticket, payload + "." + ("0" * len(mac)))
    assert _raw(hub, "PUT", forged, data)[0] == 403
    assert not list((hub.root / "lfs" / "objects").rglob(oid))
    assert _raw(hub, "PUT", path, data)[0] == 200
    assert list((hub.root / "lfs" / "objects").rglob(oid))


def test_tokens_are_stored_hashed(hub: Hub) -> None:
    text = (hub.root / "tokens.json").read_text()
    assert hub.token not in text and hashlib.sha256(hub.token.encode()).hexdigest() in text
    assert (hub.root / "tokens.json").stat().st_mode & 0o077 == 0
