"""Guards of the suite itself: on CI a skipped test fails (a missing browser, actionlint, jq or
git-lfs must not pass silently); locally it stays a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SKIPPING = """\
import pytest

def test_needs_a_tool():
    pytest.skip("no such tool here")

def test_plain():
    pass
"""


def _run(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_on_ci_and_stays_a_skip_locally(tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")  # the hook under test
    (tmp_path / "test_probe.py").write_text(SKIPPING)
    on_ci = _run(tmp_path, "true")
    assert on_ci.returncode == 1, on_ci.stdout[-2000:]
    assert "1 failed, 1 passed" in on_ci.stdout and "skipped on CI (CI=true)" in on_ci.stdout
    local = _run(tmp_path, None)
    assert local.returncode == 0, local.stdout[-2000:]
    assert "1 passed, 1 skipped" in local.stdout
