"""The GitHub Actions workflows: actionlint, pinned actions, and the release plan's wave jobs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def actionlint() -> str | None:
    """The actionlint command: on PATH, or beside this Python (a venv that is not activated)."""
    found = shutil.which("actionlint")
    if found:
        return found
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.is_file() else None


def test_the_workflows_exist() -> None:
    assert {f.name for f in FILES} >= {"ci.yml", "release.yml", "release-recipe.yml"}


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    exe = actionlint()
    if exe is None:
        pytest.skip("actionlint is not installed (the test extras install it: pip install -e '.[test]')")
    proc = subprocess.run(
        [exe, "-no-color", "-oneline", *(str(f.relative_to(ROOT)) for f in FILES)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    # and it does look: the release workflow with a wave that needs a job that does not exist
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    for f in FILES:
        (broken / f.name).write_text(f.read_text().replace("needs: [plan, wave4]", "needs: [plan, wave99]"))
    files = [str(f.relative_to(tmp_path)) for f in sorted(broken.iterdir())]
    proc = subprocess.run([exe, "-no-color", "-oneline", *files], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and 'needs job "wave99" which does not exist' in proc.stdout


def test_every_action_is_pinned_to_a_commit() -> None:
    for f in FILES:
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines, 1):
            m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if m is None or m.group(1).startswith("./"):
                continue
            assert PINNED.match(m.group(1)), f"{f.name}:{i}: {m.group(1)} is not pinned to a full commit sha"
            assert re.search(r"#\s*v\d", m.group(2)), f"{f.name}:{i}: say which version the sha is (# vX.Y.Z)"


def test_ci_runs_the_readme_test_command() -> None:
    steps = load("ci.yml")["jobs"]["test"]["steps"]
    assert any(s.get("run", "").strip() == "bash scripts/test" for s in steps)


def test_release_has_one_wave_job_per_planned_wave() -> None:
    wf = load("release.yml")
    assert wf["on"]["push"]["paths"] == ["recipes/**", "templates/**"] and "workflow_dispatch" in wf["on"]
    jobs = wf["jobs"]
    max_waves = int(wf["env"]["MAX_WAVES"])
    wave_jobs = sorted((j for j in jobs if re.fullmatch(r"wave\d+", j)), key=lambda j: int(j[4:]))
    assert wave_jobs == [f"wave{i}" for i in range(max_waves)]
    outputs = jobs["plan"]["outputs"]
    for i, name in enumerate(wave_jobs):
        job = jobs[name]
        assert job["needs"] == ("plan" if i == 0 else ["plan", f"wave{i - 1}"])
        assert job["if"] == f"fromJSON(needs.plan.outputs.waves) > {i}"
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.plan.outputs.wave{i}) }}}}"
        assert job["strategy"]["fail-fast"] is False
        assert job["uses"] == "./.github/workflows/release-recipe.yml"
        assert job["secrets"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}"}
        assert f"wave{i}" in outputs
    assert jobs["catalog"]["needs"] == ["plan", *wave_jobs]
    plan_script = next(s["run"] for s in jobs["plan"]["steps"] if s.get("id") == "plan")
    assert '--max-waves "$MAX_WAVES"' in plan_script


def test_one_writer_per_repo_and_the_token_from_secrets() -> None:
    wf = load("release-recipe.yml")
    job = wf["jobs"]["release"]
    assert job["concurrency"] == {"group": "publisher-repo-${{ inputs.group }}", "cancel-in-progress": False}
    assert wf["on"]["workflow_call"]["secrets"]["HF_TOKEN"]["required"] is False  # trusted publishing first
    release = next(s for s in job["steps"] if s.get("name") == "Release")
    assert release["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert '--only "${names[@]}"' in release["run"] and "--changed-since" in release["run"]
    # streaming: parents by Range requests, shards uploaded as written; nothing downloaded to cache
    assert "--stream --max-shard-size 1GB" in release["run"]
    assert not [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (GitHub's runners have it)")
def test_the_plan_step_writes_every_wave_output(tmp_path: Path) -> None:
    """Run the plan job's own script (publisher through this Python) on the repository's recipes."""
    wf = load("release.yml")
    script = next(s["run"] for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    shim = bin_dir / "publisher"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m publisher.cli "$@"\n')
    shim.chmod(0o755)
    (tmp_path / ".venv").symlink_to(tmp_path / "venv")
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    out = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(out), "MAX_WAVES": str(wf["env"]["MAX_WAVES"]), "SINCE": "",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert int(values["waves"]) == 1  # the seed recipes merge only Hub models
    first = json.loads(values["wave0"])["include"]
    assert {e["names"] for e in first} == {e["name"] for e in first} and len(first) >= 6
    assert all(json.loads(values[f"wave{i}"]) == {"include": []} for i in range(1, int(wf["env"]["MAX_WAVES"])))
    assert "MatthieuJ" in values["authors"].split()
