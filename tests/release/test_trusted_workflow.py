"""The release workflow publishes by trusted publishing (GitHub OIDC), with HF_TOKEN as the fallback."""

from __future__ import annotations

from tests.release.test_workflows import load


def test_wave_jobs_may_mint_oidc_tokens() -> None:
    jobs = load("release.yml")["jobs"]
    callers = {name: job for name, job in jobs.items() if job.get("uses") == "./.github/workflows/release-recipe.yml"}
    assert len(callers) == 10
    for name, job in callers.items():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}, name
    assert "permissions" not in jobs["plan"]  # the plan job keeps the workflow's read-only token
    assert load("release.yml")["permissions"] == {"contents": "read"}


def test_release_job_needs_no_stored_token() -> None:
    wf = load("release-recipe.yml")
    assert wf["on"]["workflow_call"]["secrets"]["HF_TOKEN"]["required"] is False
    job = wf["jobs"]["release"]
    assert job["permissions"]["id-token"] == "write"
    step = next(s for s in job["steps"] if s.get("name") == "Release")
    assert step["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"  # the fallback, empty when unset
    assert "publisher release" in step["run"]  # the exchange happens inside publisher (hub/oidc.py)
