"""``publisher quantize`` output is carded and published like a build, and re-quantizing publishes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, snapshot_download

from publisher.demo import seed_standins
from tests.hub.helpers import Hub
from tests.hub.test_provenance import cli, hub_env, published_files, writes


def test_quantize_card_publish(hub: Hub, tmp_path: Path) -> None:
    seed_standins(hub.url, hub.token, ["acme/base-a"], tmp_path / "standins")
    commit = hub.api().list_repo_commits("acme/base-a")[0].commit_id
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    source = Path(snapshot_download("acme/base-a", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "cache"))
    out = tmp_path / "work" / "base-a-FP8"
    cli("quantize", source, "--scheme", "fp8-dynamic", "--out", out, "--name", "acme/base-a-FP8", "--quiet", env=env)
    own = json.loads((out / "manifest.json").read_text())
    assert own["merge_method"] == "none" and own["quantized_from"]["ref"] == f"acme/base-a@{commit}"
    assert [(i["repo_id"], i["revision"], i["kind"]) for i in own["inputs"]] == [("acme/base-a", commit, "hub")]
    cli("card", out, env=env)
    card = ModelCard((out / "README.md").read_text())
    assert card.data.base_model == "acme/base-a" and card.data.base_model_relation == "quantized"
    assert card.data.license == "apache-2.0"  # the stand-in's card says so
    assert f"at commit `{commit}`" in card.text and "**Weights dtype:** F8\\_E4M3" in card.text
    assert f"hf download acme/base-a --revision {commit} --local-dir base-a" in card.text
    cli("check", out, "--no-measure", env=env)  # the release gate's structural checks
    done = cli("publish", out, env=env)
    assert "published" in done.stdout, done.stdout
    files = published_files(hub, "acme/base-a-FP8", tmp_path / "check")
    assert {"manifest.json", "README.md", "config.json", "model.safetensors"} <= set(files)
    assert "build.json" not in files
    for name, data in files.items():
        assert str(tmp_path).encode() not in data and b"snapshots/" not in data, name
    assert [t.name for t in hub.api().list_repo_refs("acme/base-a-FP8").tags] == ["v1.0.0"]

    # the same quantization elsewhere publishes nothing
    again = tmp_path / "other" / "q"
    cli("quantize", source, "--scheme", "fp8-dynamic", "--out", again, "--name", "acme/base-a-FP8", "--quiet", env=env)
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    cli("card", again, env=env)
    cli("check", again, "--no-measure", env=env)
    before = dict(hub.server.app.stats)
    done = cli("publish", again, env=env)
    assert "up to date" in done.stdout and writes(hub, before) == {}, done.stdout
