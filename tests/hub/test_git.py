"""git against the local Hub: clone, fetch, ls-remote over smart HTTP; LFS pointers and ``git lfs pull``.

The real ``git`` (and Debian's git-lfs: ``scripts/system-packages.sh`` installs it; a test
that skips for lack of it fails on CI) in an isolated HOME with prompts off, so a missing
credential fails instead of waiting.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hub.helpers import Hub

BIG = 11 << 20  # over the Hub's 10 MB: an LFS file


def _git(args: list[str], cwd: Path, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", SSH_ASKPASS="")
    run = subprocess.run(["git", "-c", "credential.helper=", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120)
    if check:
        assert run.returncode == 0, f"git {' '.join(args)}: {run.stderr}"
    return run


def _with_token(url: str, token: str, user: str = "alice") -> str:
    return url.replace("http://", f"http://{user}:{token}@", 1)


def _publish(hub: Hub, repo_id: str, *, private: bool, repo_type: str = "model") -> dict[str, bytes]:
    api = hub.api()
    api.create_repo(repo_id, private=private, repo_type=repo_type)
    files = {"big.bin": os.urandom(BIG), "config.json": b'{"a": 1}\n', "sub/notes.txt": b"notes\n"}
    api.upload_file(path_or_fileobj=files["big.bin"], path_in_repo="big.bin", repo_id=repo_id, repo_type=repo_type)
    for rel in ("config.json", "sub/notes.txt"):
        api.upload_file(path_or_fileobj=files[rel], path_in_repo=rel, repo_id=repo_id, repo_type=repo_type)
    return files


def _pointer(data: bytes) -> bytes:
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()


def test_clone_fetch_ls_remote_public(hub: Hub, tmp_path: Path) -> None:
    files = _publish(hub, "alice/open", private=False)
    api = hub.api()
    api.create_tag("alice/open", tag="v1.0.0")
    sha = api.model_info("alice/open").sha
    home = tmp_path / "home"
    home.mkdir()
    url = f"{hub.url}/alice/open"

    refs = _git(["ls-remote", url], tmp_path, home).stdout
    assert f"{sha}\trefs/heads/main" in refs and f"{sha}\tHEAD" in refs and "refs/tags/v1.0.0" in refs

    _git(["clone", "-q", url, "clone"], tmp_path, home)
    clone = tmp_path / "clone"
    assert _git(["rev-parse", "HEAD"], clone, home).stdout.strip() == sha  # the Hub's commit ids
    assert (clone / "config.json").read_bytes() == files["config.json"]
    assert (clone / "sub/notes.txt").read_bytes() == files["sub/notes.txt"]
    assert (clone / "big.bin").read_bytes() == _pointer(files["big.bin"])  # large files are LFS pointers

    api.upload_file(path_or_fileobj=b"later\n", path_in_repo="later.txt", repo_id="alice/open")
    _git(["pull", "-q", "--ff-only"], clone, home)
    assert (clone / "later.txt").read_bytes() == b"later\n"
    assert _git(["rev-parse", "HEAD"], clone, home).stdout.strip() == api.model_info("alice/open").sha

    # the older wire protocol (v0) too, through the .git URL form
    _git(["-c", "protocol.version=0", "clone", "-q", f"{url}.git", "clone-v0"], tmp_path, home)
    assert (tmp_path / "clone-v0" / "later.txt").is_file()

    (clone / "new.txt").write_text("x")
    _git(["add", "new.txt"], clone, home)
    _git(["-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-qm", "x"], clone, home)
    push = _git(["push", "origin", "main"], clone, home, check=False)
    assert push.returncode != 0 and "pushing is not supported by the local Hub" in push.stderr


def test_private_repos_need_a_token_and_stay_invisible(hub: Hub, tmp_path: Path) -> None:
    files = _publish(hub, "alice/secret", private=True)
    home = tmp_path / "home"
    home.mkdir()
    url = f"{hub.url}/alice/secret"
    anonymous = _git(["ls-remote", url], tmp_path, home, check=False)
    missing = _git(["ls-remote", f"{hub.url}/alice/no-such-repo"], tmp_path, home, check=False)
    assert anonymous.returncode != 0 and missing.returncode != 0
    assert anonymous.stderr.replace("secret", "X") == missing.stderr.replace("no-such-repo", "X")  # same answer

    bob = hub.server.create_token("bob")
    as_bob = _git(["ls-remote", _with_token(url, bob, "bob")], tmp_path, home, check=False)
    as_bob_missing = _git(["ls-remote", _with_token(f"{hub.url}/alice/nope", bob, "bob")], tmp_path, home, check=False)
    assert as_bob.returncode != 0 and "not found" in as_bob.stderr
    assert as_bob.stderr.replace("secret", "X") == as_bob_missing.stderr.replace("nope", "X")
    wrong = _git(["ls-remote", _with_token(url, "hf_not_a_token")], tmp_path, home, check=False)
    assert wrong.returncode != 0

    reader = hub.server.create_token("alice", "read")
    _git(["clone", "-q", _with_token(url, reader), "clone"], tmp_path, home)
    assert (tmp_path / "clone" / "config.json").read_bytes() == files["config.json"]


def _need_git_lfs() -> None:
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed (scripts/system-packages.sh installs Debian's git-lfs)")


def test_git_lfs_pull_public_private_and_dataset(hub: Hub, tmp_path: Path) -> None:
    _need_git_lfs()
    home = tmp_path / "home"
    home.mkdir()
    cases = [
        ("alice/lfs-open", False, "model", f"{hub.url}/alice/lfs-open"),
        ("alice/lfs-secret", True, "model", _with_token(f"{hub.url}/alice/lfs-secret", hub.token)),
        ("alice/lfs-data", False, "dataset", f"{hub.url}/datasets/alice/lfs-data"),
    ]
    for repo_id, private, repo_type, url in cases:
        files = _publish(hub, repo_id, private=private, repo_type=repo_type)
        target = tmp_path / repo_id.replace("/", "-")
        _git(["clone", "-q", url, str(target)], tmp_path, home)
        _git(["lfs", "install", "--local"], target, home)
        _git(["lfs", "pull"], target, home)
        assert (target / "big.bin").read_bytes() == files["big.bin"], repo_id
        assert _git(["status", "--porcelain"], target, home).stdout == ""


def test_lfs_batch_download_offers_only_this_repos_objects(hub: Hub) -> None:
    import httpx2 as httpx

    files = _publish(hub, "alice/one", private=True)
    hub.api().create_repo("alice/two")
    oid = hashlib.sha256(files["big.bin"]).hexdigest()
    batch = {"operation": "download", "transfers": ["basic"], "objects": [{"oid": oid, "size": BIG}]}
    auth = {"Authorization": f"Bearer {hub.token}"}
    r = httpx.post(f"{hub.url}/alice/two.git/info/lfs/objects/batch", json=batch, headers=auth)
    assert r.status_code == 200 and r.json()["objects"][0]["error"]["code"] == 404  # not linked into two
    assert httpx.post(f"{hub.url}/alice/one.git/info/lfs/objects/batch", json=batch).status_code == 401
    r = httpx.post(f"{hub.url}/alice/one.git/info/lfs/objects/batch", json=batch, headers=auth)
    href = r.json()["objects"][0]["actions"]["download"]["href"]
    assert httpx.get(href).content == files["big.bin"]
    assert httpx.get(href[:-3] + "abc").status_code == 403  # the signature covers the URL
    upload = httpx.put(href.replace("/lfs-download/", "/lfs-upload/"), content=b"x")
    assert upload.status_code == 403  # a download URL is no upload ticket


def test_upload_pack_takes_gzip_requests_and_refuses_dumb_http(hub: Hub) -> None:
    import gzip

    import httpx2 as httpx

    from publisher.hub.server.git_http import pkt_line

    hub.api().create_repo("alice/raw")
    sha = hub.api().model_info("alice/raw").sha
    request = pkt_line(f"want {sha}\n") + b"0000" + pkt_line("done\n")
    headers = {"Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip"}
    r = httpx.post(f"{hub.url}/alice/raw/git-upload-pack", content=gzip.compress(request), headers=headers)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert r.content.startswith(b"0008NAK\n") and b"PACK" in r.content
    headers["Content-Encoding"] = "br"
    assert httpx.post(f"{hub.url}/alice/raw/git-upload-pack", content=request, headers=headers).status_code == 400
    assert httpx.get(f"{hub.url}/alice/raw/info/refs").status_code == 403  # no dumb protocol
