"""A mergekit-multi stage named with a repo id is published as its own versioned repo, in the
same publish as the final merge, which is pinned to the stage's commit; the final card names
the stage repo and the stage's parents (real huggingface_hub client, local Hub)."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import hf_hub_download

from publisher.build import BuildOptions, build
from publisher.hub.publish import publish
from publisher.standins import generate_family
from tests.hub.helpers import FAST_RETRY, Hub
from tests.multi_texts import STAGED


def test_stage_published_as_its_own_repo_with_lineage(hub: Hub, tmp_path: Path) -> None:
    family = generate_family(tmp_path / "family", finetunes=0)
    text = STAGED
    for key, folder in family.items():
        text = text.replace("{" + key + "}", str(folder))
    recipe = tmp_path / "multi.yaml"
    recipe.write_text(text)
    out = tmp_path / "final"
    build(recipe, out, BuildOptions(threads=2, quiet=True))
    stage = tmp_path / "final.stages" / "acme--blend-ab"
    stage_manifest = json.loads((stage / "manifest.json").read_text())
    assert stage_manifest["recipe_name"] == "acme/blend-ab" and stage_manifest["recipe_version"] == "1.0.0"
    [parent] = [i for i in json.loads((out / "manifest.json").read_text())["inputs"] if i["repo_id"] == "acme/blend-ab"]
    assert parent["kind"] == "recipe" and parent["revision"] is None  # no commit before it is published

    dry = publish(out, dry_run=True, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert [(r.repo_id, r.action) for r in dry.results] == [("acme/blend-ab", "would create and publish"), ("acme/final", "would create and publish")]
    assert not list(hub.api().list_models(author="acme"))  # a dry run writes nothing
    report = publish(out, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert [(r.repo_id, r.action) for r in report.results] == [("acme/blend-ab", "published"), ("acme/final", "published")]
    api = hub.api()
    stage_commit = api.list_repo_refs("acme/blend-ab").tags[0].target_commit
    assert [t.name for t in api.list_repo_refs("acme/blend-ab").tags] == ["v1.0.0"]
    assert report.results[0].commit == stage_commit

    def read(repo_id: str, name: str) -> str:
        path = hf_hub_download(repo_id, name, revision="v1.0.0", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "cache")
        return Path(path).read_text()

    published = json.loads(read("acme/final", "manifest.json"))
    [pinned] = [i for i in published["inputs"] if i["repo_id"] == "acme/blend-ab"]
    assert pinned["revision"] == stage_commit
    stage_weights = json.loads(read("acme/blend-ab", "manifest.json"))["variants"][0]["files"]
    assert {f["path"]: f["sha256"] for f in stage_weights if f["path"].endswith(".safetensors")} == {
        f["path"]: f["sha256"] for f in pinned["files"] if f["path"].endswith(".safetensors")
    }
    card = read("acme/final", "README.md")
    assert "acme/blend-ab" in card and stage_commit[:7] in card
    lineage = card[card.index("acme/blend-ab") :]
    assert str(family["a"].name) in lineage and str(family["b"].name) in lineage  # the stage's own parents
    assert "base_model:\n- acme/blend-ab\n" in card
    assert f"model: acme/blend-ab@{stage_commit}" in card  # "How to reproduce" merges exactly that commit

    again = publish(out, endpoint=hub.url, token=hub.token, retry=FAST_RETRY)
    assert [(r.repo_id, r.action) for r in again.results] == [("acme/final", "up to date")]
    assert len(api.list_repo_commits("acme/blend-ab")) == 2 and len(api.list_repo_commits("acme/final")) == 2
