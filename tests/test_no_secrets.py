"""No secrets in the repository: no tracked token store, Hub secret or ``hf_`` token, and a
local Hub's data folder (or the demo's) created inside a checkout is ignored by git."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# huggingface_hub's tokens (and ours): hf_ then 30+ letters/digits; hf_hub_download does not match.
HF_TOKEN_RE = re.compile(rb"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")
HUB_STATE_NAMES = {"tokens.json", "tokens.lock", "server.lock", "secret"}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout


def secret_problems(root: Path, paths: list[str]) -> list[str]:
    """Why each tracked file looks like a secret: a Hub's state file, a token store, a token."""
    problems = []
    for rel in paths:
        path = root / rel
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.name in HUB_STATE_NAMES:
            problems.append(f"{rel}: a local Hub's {path.name}")
        if HF_TOKEN_RE.search(data):
            problems.append(f"{rel}: holds an hf_ token")
        if path.suffix == ".json" and b'"tokens"' in data:
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            tokens = doc.get("tokens") if isinstance(doc, dict) else None
            if isinstance(tokens, list) and any(isinstance(t, dict) and "sha256" in t for t in tokens):
                problems.append(f"{rel}: a token store")
    return problems


def test_no_tracked_file_is_a_secret() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = _git("ls-files", "-z").split("\0")
    assert len(tracked) > 50
    assert secret_problems(ROOT, [p for p in tracked if p]) == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "secret").write_text("ab" * 32)
    (tmp_path / "store.json").write_text(json.dumps({"users": {}, "tokens": [{"name": "x", "sha256": "00"}]}))
    (tmp_path / "notes.md").write_text("export HF_TOKEN=hf_" + "a1B2" * 9 + "\nhf_hub_download is fine\n")
    (tmp_path / "ok.py").write_text("from huggingface_hub import hf_hub_download\n")
    found = secret_problems(tmp_path, ["hub/secret", "store.json", "notes.md", "ok.py"])
    assert found == ["hub/secret: a local Hub's secret", "store.json: a token store", "notes.md: holds an hf_ token"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PUBLISHER_"))}
    env.update(HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def test_a_hub_root_inside_a_checkout_is_never_committed(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    _git("init", "-q", cwd=checkout)
    (checkout / "README.md").write_text("mine\n")
    # A token made for a new root, as `publisher hub token create` does before any server ran...
    proc = subprocess.run(
        [sys.executable, "-m", "publisher", "hub", "token", "create", "alice", "--root", "hub-data"],
        cwd=checkout, env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("hf_")
    # ...and a server's root (signing secret, lock).
    from publisher.hub.server import LocalHub

    with LocalHub(checkout / "sub" / "hub") as hub:
        hub.create_token("bob", "read")
    _git("add", "-A", cwd=checkout)
    assert _git("ls-files", cwd=checkout).split() == ["README.md"]
    assert (checkout / "hub-data" / "tokens.json").is_file() and (checkout / "sub" / "hub" / "secret").is_file()
