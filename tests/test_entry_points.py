"""``python -m publisher`` is the ``publisher`` program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from publisher import __version__


def test_python_dash_m_publisher_runs_the_program(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "publisher", "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"publisher {__version__}"
    proc = subprocess.run([sys.executable, "-m", "publisher", "plan", str(tmp_path / "nope.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
