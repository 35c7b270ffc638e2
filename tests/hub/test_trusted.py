"""Trusted publishing end to end: a locally signed OIDC ID token exchanged for a repo-scoped token.

A stand-in for GitHub Actions' OIDC provider (the ``ACTIONS_ID_TOKEN_REQUEST_*`` endpoint)
signs RS256 ID tokens with a key made here; the local Hub trusts that key through
``publisher hub trust``; ``publisher publish`` runs with no HF_TOKEN and no stored login.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from publisher.errors import PublishError
from publisher.hub import oidc
from tests.hub.helpers import Hub, make_build
from tests.hub.test_cli import _cli

ISSUER = "https://token.actions.githubusercontent.com"
CLAIMS = {"repository": "alice/recipes", "ref": "refs/heads/main", "workflow": "release"}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key: rsa.RSAPrivateKey, *, audience: str = "https://huggingface.co", ttl: int = 300,
         **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": audience, "sub": "repo:alice/recipes:ref:refs/heads/main",
            "iat": now, "nbf": now, "exp": now + ttl, **CLAIMS, **claims}
    return jwt.encode(body, key, algorithm="RS256")


class Provider:
    """GitHub Actions' ID-token endpoint: GET URL&audience=AUD with the request bearer token."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.bearer = "actions-request-token"
        self.claims: dict[str, Any] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                audience = parse_qs(urlparse(self.path).query).get("audience", [""])[0]
                if self.headers.get("Authorization") != f"bearer {provider.bearer}":
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"value": sign(provider.key, audience=audience, **provider.claims)}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {oidc.REQUEST_URL: self.url, oidc.REQUEST_TOKEN: self.bearer}


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider(_key())
    yield p
    p.server.shutdown()
    p.server.server_close()


def _trust(hub: Hub, tmp_path: Path, repo: str, key: rsa.RSAPrivateKey, **claims: str) -> None:
    pem = tmp_path / "issuer.pem"
    pem.write_text(_pem(key))
    args = [f"--claim={k}={v}" for k, v in {**CLAIMS, **claims}.items()]
    made = _cli("hub", "trust", repo, "--issuer", ISSUER, "--public-key", str(pem), *args, "--root", str(hub.root))
    assert made.returncode == 0, made.stderr


def test_publish_without_hf_token_through_trusted_publishing(hub: Hub, provider: Provider, tmp_path: Path) -> None:
    alice = hub.api()
    for repo in ("alice/tiny-merge", "alice/tiny-merge-FP8"):
        alice.create_repo(repo)  # the Hub's publishers are configured on existing repos
        _trust(hub, tmp_path, repo, provider.key)
    build = make_build(tmp_path / "build")
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "no-login"), **provider.env()}
    done = _cli("publish", str(build), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("published") >= 2, done.stdout
    for repo in ("alice/tiny-merge", "alice/tiny-merge-FP8"):
        commits = alice.list_repo_commits(repo)
        assert commits[0].authors == ["[OIDC]"] and "model.safetensors" in alice.list_repo_files(repo)
        assert [t.name for t in alice.list_repo_refs(repo).tags] == ["v1.0.0"]
    # without the ID-token permission and without HF_TOKEN there is nothing to publish with
    again = _cli("publish", str(make_build(tmp_path / "other", version="1.0.1", seed=5)),
                 env={"HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "no-login")})
    assert again.returncode == 1 and "no Hub token" in again.stderr


def test_a_repo_scoped_token_cannot_write_another_repo(hub: Hub, provider: Provider, tmp_path: Path) -> None:
    alice = hub.api()
    alice.create_repo("alice/target")
    alice.create_repo("alice/other", private=True)
    _trust(hub, tmp_path, "alice/target", provider.key)
    token = oidc.exchange(hub.url, sign(provider.key), "alice/target")
    assert token.startswith("hf_jwt_")
    scoped = HfApi(endpoint=hub.url, token=token)
    scoped.upload_file(path_or_fileobj=b"ok", path_in_repo="ok.txt", repo_id="alice/target")
    assert "ok.txt" in alice.list_repo_files("alice/target")
    with pytest.raises(HfHubHTTPError) as e:
        scoped.upload_file(path_or_fileobj=b"no", path_in_repo="no.txt", repo_id="alice/pub-elsewhere")
    assert e.value.response.status_code in (403, 404)
    alice.create_repo("alice/public-other")
    with pytest.raises(HfHubHTTPError) as e:
        scoped.upload_file(path_or_fileobj=b"no", path_in_repo="no.txt", repo_id="alice/public-other")
    assert e.value.response.status_code == 403 and "scoped to the repo alice/target" in str(e.value)
    with pytest.raises(HfHubHTTPError) as e:
        scoped.create_repo("alice/new-one")
    assert e.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        scoped.model_info("alice/other")  # private and not its repo: invisible
    with pytest.raises(HfHubHTTPError) as e:
        scoped.delete_repo("alice/public-other")
    assert e.value.response.status_code == 403
    assert alice.list_repo_files("alice/public-other") == [".gitattributes"]
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=hub.url, token=forged).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/target")
    assert e.value.response.status_code == 401


@pytest.mark.parametrize("case", ["claims", "key", "expired", "audience", "issuer", "not-a-jwt", "repo"])
def test_refused_exchanges(hub: Hub, provider: Provider, tmp_path: Path, case: str) -> None:
    hub.api().create_repo("alice/target")
    _trust(hub, tmp_path, "alice/target", provider.key)
    token = {
        "claims": lambda: sign(provider.key, ref="refs/heads/evil"),
        "key": lambda: sign(_key()),
        "expired": lambda: sign(provider.key, ttl=-120),
        "audience": lambda: sign(provider.key, audience="https://elsewhere.example"),
        "issuer": lambda: sign(provider.key, iss="https://evil.example"),
        "not-a-jwt": lambda: "garbage",
        "repo": lambda: sign(provider.key),
    }[case]()
    resource = "alice/untrusted" if case == "repo" else "alice/target"
    with pytest.raises(PublishError) as e:
        oidc.exchange(hub.url, token, resource)
    assert "HTTP 400" in e.value.what


def test_refused_exchange_falls_back_to_hf_token(hub: Hub, provider: Provider, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.hub.publish import publish

    for name, value in provider.env().items():
        monkeypatch.setenv(name, value)
    lines: list[str] = []
    report = publish(make_build(tmp_path / "build", variants=False), endpoint=hub.url, token=hub.token,
                     log=lines.append)
    assert [r.action for r in report.results] == ["published"]
    assert any("trusted publishing unavailable" in line and "using HF_TOKEN" in line for line in lines)
    assert hub.api().list_repo_commits("alice/tiny-merge")[0].authors == ["alice"]


def test_scoped_tokens_are_exchanged_again_before_they_expire(hub: Hub, provider: Provider, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.hub.remote import make_api

    for name, value in provider.env().items():
        monkeypatch.setenv(name, value)
    hub.api().create_repo("alice/long")
    _trust(hub, tmp_path, "alice/long", provider.key)
    api, trusted = oidc.scoped_api(make_api(hub.url, None), hub.url, ["alice/long"], None, lambda _m: None)
    assert trusted and isinstance(api, oidc.RepoScopedApi)
    first = api.token_for("alice/long")
    api.create_repo("alice/long", exist_ok=True)  # the repo exists: a 409 that exist_ok accepts
    api._minted["alice/long"] -= oidc.REFRESH_S + 1  # as if 46 minutes had passed
    second = api.token_for("alice/long")
    assert second != first and api.token_for("alice/other") is None
    api.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id="alice/long")
    assert "late.txt" in hub.api().list_repo_files("alice/long")
