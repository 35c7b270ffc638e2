"""The command line: ``publisher hub``, ``publisher publish``; the token never shows up anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from publisher.hub.server.auth import TokenStore
from tests.hub.helpers import Hub, make_build, read_line

ROOT_DIR = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT_DIR), COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "publisher.cli", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def test_token_create_and_serve(tmp_path: Path) -> None:
    root = tmp_path / "root"
    made = _cli("hub", "token", "create", "carol", "--scope", "read", "--org", "lab", "--root", str(root))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("hf_") and TokenStore(root).lookup(token) is not None
    assert _cli("hub", "token", "create", "bad/name", "--root", str(root)).returncode == 2
    listed = _cli("hub", "token", "list", "--root", str(root))
    assert "carol" in listed.stdout and "lab" in listed.stdout and token not in listed.stdout
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR))
    server = subprocess.Popen([sys.executable, "-m", "publisher.cli", "hub", "serve", "--root", str(root), "--port", "0"],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = read_line(server.stderr)
        url = line.split(" at ")[1].split()[0]
        req = urllib.request.Request(f"{url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req) as r:
            assert b'"carol"' in r.read()
        second = _cli("hub", "serve", "--root", str(root), "--port", "0")
        assert second.returncode == 2 and "already using" in second.stderr
    finally:
        server.terminate()
        server.wait(10)


def test_publish_command_and_token_secrecy(hub: Hub, tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_HOME": str(tmp_path / "hf-home")}
    build = make_build(tmp_path / "build")
    outputs = []

    dry = _cli("publish", str(build), "--dry-run", env=env)
    outputs.append(dry)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "+ model.safetensors" in dry.stdout and "would create and publish" in dry.stdout
    assert "alice/tiny-merge-FP8" in dry.stdout

    done = _cli("publish", str(build), env=env)
    outputs.append(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("published") >= 2

    again = _cli("publish", str(build), env=env)
    outputs.append(again)
    assert again.returncode == 0 and again.stdout.count("up to date") == 2

    conflict = _cli("publish", str(make_build(tmp_path / "other", seed=9)), env=env)
    outputs.append(conflict)
    assert conflict.returncode == 1
    assert "never moved" in conflict.stderr and "1.0.1" in conflict.stderr and "Traceback" not in conflict.stderr

    bad_token = _cli("publish", str(build), env={**env, "HF_TOKEN": hub.token[:-4] + "XXXX"})
    outputs.append(bad_token)
    assert bad_token.returncode == 1 and "Traceback" not in bad_token.stderr

    for out in outputs:
        assert hub.token not in out.stdout and hub.token not in out.stderr
        assert hub.token[3:20] not in out.stdout + out.stderr
    secret = hub.token.encode()
    for folder in (hub.root, build, tmp_path / "hf-home"):
        for f in folder.rglob("*"):
            if f.is_file():
                assert secret not in f.read_bytes(), f


def test_publish_without_token_is_a_clear_error(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "build", variants=False)
    out = _cli("publish", str(build), env={"HF_ENDPOINT": hub.url, "HF_TOKEN": "", "HF_HOME": str(tmp_path / "h")})
    assert out.returncode == 1 and "no Hub token" in out.stderr
    missing = _cli("publish", str(tmp_path / "nowhere"), env={"HF_ENDPOINT": hub.url})
    assert missing.returncode == 2 and "manifest.json" in missing.stderr
