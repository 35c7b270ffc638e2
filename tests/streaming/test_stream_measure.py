"""A streaming release is not measured (its shards leave the disk as they are written): the
gate, checks.json and both published cards say so, and why, instead of staying silent."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import hf_hub_download

from publisher.check.results import CheckReport
from tests.streaming.conftest import Parents
from tests.streaming.kit import cli, recipe_text

SHARD = 400_000
WHY = "this is a streaming build (build --publish, release --stream), which uploads each shard as it is written"


def test_streamed_release_says_it_was_not_measured_and_why(parents: Parents, tmp_path: Path) -> None:
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b"))
    env = {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(tmp_path / "hf-home"),
           "PUBLISHER_CACHE": str(tmp_path / "pcache")}
    done = cli("build", str(recipe), "--out", str(tmp_path / "out"), "--max-shard-size", str(SHARD), "--publish", env=env)
    assert done.returncode == 0, done.stderr
    assert f"not measured: {WHY}" in done.stdout.replace("\n", " ")

    def published(repo_id: str, name: str) -> str:
        path = hf_hub_download(repo_id, name, revision="v1.0.0", endpoint=parents.url, token=parents.token,
                               cache_dir=tmp_path / "check")
        return Path(path).read_text()

    report = CheckReport.model_validate_json(published("alice/streamed", "checks.json"))
    assert report.passed and not report.measured and not report.measurements and not report.findings
    assert report.note is not None and report.note.startswith(f"not measured: {WHY}")
    for repo_id in ("alice/streamed", "alice/streamed-FP8"):
        card = published(repo_id, "README.md")
        section = card.split("## Measured\n", 1)[1].split("\n## ", 1)[0]
        assert section.strip().startswith("**Not measured.**"), section
        assert WHY in section and "they passed" in section
        assert "perplexity" not in card.split("---")[1].lower()  # no measured model-index entries
    assert "FP8 layout" in published("alice/streamed-FP8", "README.md")
