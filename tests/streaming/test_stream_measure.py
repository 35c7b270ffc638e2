"""A streaming release is measured before its one commit, although its shards left the disk as
they were written: the measured pass computes each tensor again from the Hub parents and proves
it equal (sha256) to the published one (publisher/check/recompute.py). It measures what the same
recipe built without streaming measures, and its gate refuses a broken merge with nothing committed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from huggingface_hub import HfApi, hf_hub_download

from publisher.check.results import CheckReport
from tests.check.conftest import copy_model, make_bigram, rewrite_tensors
from tests.streaming.conftest import Parents
from tests.streaming.kit import cli, publish_parents, recipe_text

SHARD = 400_000
NUMBERS = ("perplexity", "mean_nll", "top1_agreement", "mean_kl", "recovery", "fp8_weight_error", "fp8_worst_tensor")
CHECKS = "checks: {tokens: 96}\n"


def _env(parents: Parents, tmp_path: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": parents.url, "HF_TOKEN": parents.token, "HF_HOME": str(tmp_path / "hf-home"),
            "PUBLISHER_CACHE": str(tmp_path / "pcache"), "HF_HUB_OFFLINE": "0"}


def _sent_reaches(parents: Parents, want: int, timeout: float = 60.0) -> int:
    """The server's count of parent bytes sent, once it reaches ``want`` (a handler counts its bytes
    just after sending them; the timeout is only a safety net), or whatever it is then."""
    deadline = time.monotonic() + timeout
    while True:
        sent = sum(n for p, n in parents.server.app.sent.items() if p.endswith(".safetensors"))
        if sent >= want or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


def _numbers(report: CheckReport) -> list[dict[str, object]]:
    return [{"variant": m.variant, **{k: getattr(m, k) for k in NUMBERS}} for m in report.measurements]


def test_streamed_release_is_measured_as_the_unstreamed_build(parents: Parents, tmp_path: Path) -> None:
    recipe = tmp_path / "streamed.yaml"
    recipe.write_text(recipe_text("acme/base-a", "acme/base-b") + CHECKS)
    env = _env(parents, tmp_path)
    parents.server.app.sent.clear()
    done = cli("build", str(recipe), "--out", str(tmp_path / "out"), "--max-shard-size", str(SHARD), "--publish", env=env)
    assert done.returncode == 0, done.stderr
    assert "not measured" not in done.stdout + done.stderr
    assert "each tensor computed again" in done.stdout.replace("\n", " ")
    # The parents' bytes: once for the merge (hashed whole), then each tensor once more for each
    # model measured (merged, FP8), by Range requests; nothing downloaded.
    files = [f for folder in parents.folders.values() for f in folder.glob("*.safetensors")]
    tensors = sum(f.stat().st_size - 8 - int.from_bytes(f.read_bytes()[:8], "little") for f in files)
    want = sum(f.stat().st_size for f in files) + 2 * tensors
    assert _sent_reaches(parents, want) == want
    assert not (tmp_path / "hf-home" / "hub").exists() or not list((tmp_path / "hf-home" / "hub").rglob("*.safetensors"))

    def published(repo_id: str, name: str) -> str:
        path = hf_hub_download(repo_id, name, revision="v1.0.0", endpoint=parents.url, token=parents.token,
                               cache_dir=tmp_path / "check")
        return Path(path).read_text()

    streamed = CheckReport.model_validate_json(published("alice/streamed", "checks.json"))
    assert streamed.passed and streamed.measured and streamed.note is None and not streamed.findings
    assert [m.variant for m in streamed.measurements] == ["merged", "FP8"]

    # The same recipe, parents downloaded, shards kept: the same numbers.
    plain = cli("build", str(recipe), "--out", str(tmp_path / "plain"), "--max-shard-size", str(SHARD), env=env)
    assert plain.returncode == 0, plain.stderr
    local = CheckReport.model_validate_json((tmp_path / "plain" / "checks.json").read_text())
    assert local.measured and local.text == streamed.text
    assert _numbers(streamed) == _numbers(local)  # the same bytes through the same code: exactly
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["variants"] == \
        json.loads((tmp_path / "plain" / "manifest.json").read_text())["variants"]  # same bytes were measured

    for repo_id in ("alice/streamed", "alice/streamed-FP8"):
        card = published(repo_id, "README.md")
        section = card.split("## Measured\n", 1)[1].split("\n## ", 1)[0]
        assert "Not measured" not in section and "perplexity" in section.lower(), section
        assert "perplexity" in card.split("---")[1].lower()  # measured model-index entries

    # Checked again later, the folder holds stubs and no parents: checked, and says why not measured.
    again = cli("check", str(tmp_path / "out"), env=env)
    assert again.returncode == 0, again.stderr
    assert "not measured: this is a streaming build" in again.stdout.replace("\n", " ")
    assert "its build measured it before publishing" in again.stdout.replace("\n", " ")


def test_streamed_release_of_a_scrambled_merge_is_refused_before_any_commit(parents: Parents, tmp_path: Path) -> None:
    """Parents that predict the text (bigram stand-ins) on the Hub; one has a layer of noise: the
    merge runs and uploads its shards, the measured pass (parents by Range reads too) refuses it."""
    good = make_bigram(tmp_path / "bigram-a", 21)
    scrambled = copy_model(make_bigram(tmp_path / "bigram-b", 22), tmp_path / "scrambled")

    def scramble(t: dict[str, torch.Tensor]) -> None:
        gen = torch.Generator().manual_seed(0)
        for name in [n for n in t if n.startswith("model.layers.1.") and n.endswith("proj.weight")]:
            t[name] = (torch.randn(t[name].shape, generator=gen) * 0.6).to(t[name].dtype)

    rewrite_tensors(scrambled, scramble)
    publish_parents(parents.api(), {"acme/bigram-a": good, "acme/scrambled": scrambled})
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: alice/bad\nversion: 1.0.0\nmerge:\n  models: [{model: acme/scrambled}, {model: acme/bigram-a}]\n"
        "  merge_method: slerp\n  base_model: acme/scrambled\n  parameters: {t: 0.3}\n  dtype: bfloat16\n"
        "checks: {with_parents: true, tokens: 256}\n"
    )
    r = cli("build", str(recipe), "--out", str(tmp_path / "out"), "--publish", env=_env(parents, tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "merged perplexity is" in errors[0] and "above the threshold" in errors[0], r.stderr
    assert "parent acme/bigram-a" in r.stdout  # the parents were measured, by Range reads
    api = HfApi(endpoint=parents.url, token=parents.token)
    assert not api.list_repo_refs("alice/bad").tags
    assert [c.title for c in api.list_repo_commits("alice/bad")] == ["initial commit"]
