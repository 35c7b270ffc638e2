"""The release gate's measurement on another day is no new version: the card states the day
it measured, but its identity (and checks.json's facts) leave the day out, so a rebuild whose
gate measured the same numbers later publishes nothing; a changed number is a card change.

Through the real ``publisher`` command line (a subprocess) and huggingface_hub against the local Hub.
"""

from __future__ import annotations

import json
from pathlib import Path

from publisher.check.results import CHECKS_FILE, CheckReport
from publisher.demo import generate_standin
from tests.hub.helpers import Hub
from tests.hub.test_provenance import PARENTS, RECIPE, cli, hub_env, writes


def _measured_later(build: Path, days: int) -> str:
    """checks.json as if the gate had measured the same numbers ``days`` later; returns that day."""
    report = CheckReport.model_validate_json((build / CHECKS_FILE).read_text())
    later = report.model_copy(update={"checked": report.checked.replace(year=report.checked.year + days // 365)})
    (build / CHECKS_FILE).write_text(later.to_json())
    return later.checked.date().isoformat()


def _heads(hub: Hub) -> dict[str, str]:
    return {r: hub.api().list_repo_commits(r)[0].commit_id for r in ("acme/merge", "acme/merge-FP8")}


def _blobs(hub: Hub, revision: str) -> dict[str, str | None]:
    info = hub.api().model_info("acme/merge", revision=revision, files_metadata=True)
    return {s.rfilename: s.blob_id for s in info.siblings or []}


def test_same_numbers_measured_another_day_publish_nothing(hub: Hub, tmp_path: Path) -> None:
    parents = {r: generate_standin(r, tmp_path / "models") for r in PARENTS}
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    recipe = tmp_path / "merge.yaml"
    recipe.write_text(RECIPE.format(a=parents["acme/base-a"], b=parents["acme/base-b"]))
    first, again = tmp_path / "first", tmp_path / "elsewhere" / "again"
    cli("build", recipe, "--out", first, "--quiet", env=env)
    cli("publish", first, env=env)
    cli("build", recipe, "--out", again, "--quiet", env=env)
    day = _measured_later(again, 365)
    cli("card", again, env=env)

    card = (again / "README.md").read_text()
    assert f"on {day}" in card and f"check on {day}" in card.split("---")[1]  # the Measured section and model-index
    assert day not in (first / "README.md").read_text()
    fp8_card = (again / "variants" / "FP8" / "README.md").read_text()
    assert f"check on {day}" in fp8_card
    heads, before = _heads(hub), dict(hub.server.app.stats)
    done = cli("publish", again, env=env)
    assert "up to date" in done.stdout and "published" not in done.stdout, done.stdout
    assert writes(hub, before) == {}
    assert _heads(hub) == heads

    # a measured number that differs is a change: a card (and checks.json) commit, weights untouched
    report = json.loads((again / CHECKS_FILE).read_text())
    report["measurements"][0]["perplexity"] += 1.0
    (again / CHECKS_FILE).write_text(json.dumps(report, indent=2) + "\n")
    cli("card", again, env=env)
    changed = cli("publish", again, env=env)
    assert _heads(hub)["acme/merge"] != heads["acme/merge"], changed.stdout
    now, was = (_blobs(hub, rev) for rev in (_heads(hub)["acme/merge"], heads["acme/merge"]))
    assert {name for name, blob in now.items() if was.get(name) != blob} == {"README.md", CHECKS_FILE}
