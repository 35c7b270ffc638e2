"""``publisher demo`` as a user runs it: a fresh process, a fresh HOME, HF_HUB_OFFLINE=1, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from publisher.demo import RECIPES, external_parents
from publisher.hub.server import LocalHub
from publisher.release import load_catalog

ROOT = Path(__file__).resolve().parents[2]


def run_demo(out: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE_", "PUBLISHER_")) and k not in ("PYTHONPATH", "HOME", "XDG_CACHE_HOME")
    }
    env.update(
        HOME=str(home), HF_HOME=str(home / "hf-home"), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT),
        COLUMNS="200", TOKENIZERS_PARALLELISM="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "publisher.cli", "demo", "--out", str(out)],
        cwd=home, env=env, capture_output=True, text=True, timeout=600,
    )


def hub_state(root: Path) -> dict[str, tuple[str | None, dict[str, str]]]:
    with LocalHub(root) as hub:
        api = HfApi(endpoint=hub.url, token=hub.create_token("reader", "read"))
        out = {}
        for m in api.list_models():
            refs = api.list_repo_refs(m.id)
            main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
            out[m.id] = (main, {t.name: t.target_commit for t in refs.tags})
        return out


def test_demo_publishes_every_recipe_offline_and_a_second_run_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # this process reads the demo's hub over loopback
    home, out = tmp_path / "home", tmp_path / "home" / "demo-out"
    home.mkdir()
    proc = run_demo(out, home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "catalog:" in proc.stdout

    state = hub_state(out / "hub")
    nodes = load_catalog(RECIPES)
    assert len(nodes) >= 6
    for name, node in nodes.items():
        tag = f"v{node.version}"
        assert tag in state[name][1], f"{name} has no {tag}"
        assert tag in state[f"{name}-FP8"][1], f"{name}-FP8 has no {tag}"
    for parent in external_parents(RECIPES):
        assert parent in state and not state[parent][1]  # stand-ins: published, never tagged as versions
    index = (out / "site" / "index.html").read_text()
    assert all(name in index for name in nodes)
    assert not (home / "hf-home" / "hub").exists()  # nothing cached outside demo-out/
    assert not (home / ".cache" / "huggingface").exists()

    proc = run_demo(out, home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(0 new)" in proc.stdout
    assert hub_state(out / "hub") == state  # same repos, same commits, same tags
