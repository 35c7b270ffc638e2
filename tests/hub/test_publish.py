"""Publishing builds to the local Hub with the real client: round trip, idempotence, conflicts, dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub import snapshot_download

from publisher.check.run import check_build
from publisher.check.settings import ChecksSection
from publisher.errors import CardError, HubError, PublishError
from publisher.hub.publish import publish
from tests.hub.helpers import FAST_RETRY, MEDIUM, Hub, build_files, make_build, snapshot_files


def _publish(hub: Hub, build: Path, **kw: object):  # type: ignore[no-untyped-def]
    return publish(build, endpoint=hub.url, token=hub.token, retry=FAST_RETRY, **kw)  # type: ignore[arg-type]


def test_round_trip_tag_and_main(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "build", shape=MEDIUM, max_shard_bytes=700_000)
    report = _publish(hub, build)
    assert [(r.repo_id, r.action) for r in report.results] == [
        ("alice/tiny-merge", "published"), ("alice/tiny-merge-FP8", "published")]
    api = hub.api()
    for repo_id, folder in (("alice/tiny-merge", ""), ("alice/tiny-merge-FP8", "variants/FP8")):
        expected = build_files(build, folder)
        for rev in ("v1.0.0", "main"):
            path = snapshot_download(repo_id, revision=rev, endpoint=hub.url, token=hub.token,
                                     cache_dir=tmp_path / f"cache-{rev}-{folder.replace('/', '_')}")
            assert snapshot_files(Path(path)) == expected
        refs = api.list_repo_refs(repo_id)
        assert [t.name for t in refs.tags] == ["v1.0.0"]
        assert refs.tags[0].target_commit == refs.branches[0].target_commit
        commits = api.list_repo_commits(repo_id)
        assert [c.title for c in commits] == ["Publish v1.0.0", "initial commit"]
        info = api.model_info(repo_id, files_metadata=True)
        assert info.sha == refs.tags[0].target_commit
        assert info.card_data is not None and info.card_data["license"] == "apache-2.0"
        shards = [s for s in info.siblings or [] if s.rfilename.endswith(".safetensors")]
        assert len(shards) >= 2 and all(s.lfs is not None for s in shards)
    assert "manifest.json" in api.list_repo_files("alice/tiny-merge")
    assert "manifest.json" in api.list_repo_files("alice/tiny-merge-FP8")  # its own
    assert not any(f.startswith("variants/") for f in api.list_repo_files("alice/tiny-merge"))


def test_second_publish_is_a_no_op(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "build", variants=False)
    _publish(hub, build)
    before = hub.server.app.stats.copy()
    report = _publish(hub, build)
    assert [r.action for r in report.results] == ["up to date"]
    after = hub.server.app.stats
    writes = {k: after[k] - before[k] for k in after if not k.startswith("GET") and after[k] != before[k]}
    assert set(writes) <= {"POST /api/validate-yaml"}, writes
    assert len(hub.api().list_repo_commits("alice/tiny-merge")) == 2


def test_tag_conflict_is_refused_and_changes_nothing(hub: Hub, tmp_path: Path) -> None:
    _publish(hub, make_build(tmp_path / "b1", seed=1, variants=False))
    api = hub.api()
    head = api.list_repo_refs("alice/tiny-merge").branches[0].target_commit
    other = make_build(tmp_path / "b2", seed=2, variants=False)
    with pytest.raises(PublishError) as err:
        _publish(hub, other)
    assert "v1.0.0" in str(err.value) and "1.0.1" in str(err.value) and "never moved" in str(err.value)
    refs = api.list_repo_refs("alice/tiny-merge")
    assert refs.branches[0].target_commit == head and refs.tags[0].target_commit == head


def test_new_version_with_only_a_new_card_is_a_readme_only_commit(hub: Hub, tmp_path: Path) -> None:
    _publish(hub, make_build(tmp_path / "b1", variants=False, shape=MEDIUM))
    puts_before = _lfs_puts(hub)
    b2 = make_build(tmp_path / "b2", version="1.0.1", variants=False, shape=MEDIUM, card_extra=" Now better described.")
    report = _publish(hub, b2)
    changed = {(c.path, c.kind) for c in report.results[0].changes}
    # checks.json: what the release gate checked of this build (publisher.check)
    assert changed == {("README.md", "change"), ("manifest.json", "change"), ("recipe.yaml", "change"), ("checks.json", "change")}
    assert _lfs_puts(hub) == puts_before  # the weights were not sent again
    api = hub.api()
    tags = {t.name: t.target_commit for t in api.list_repo_refs("alice/tiny-merge").tags}
    assert set(tags) == {"v1.0.0", "v1.0.1"}


def test_same_version_card_change_updates_main_and_keeps_the_tag(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b1", variants=False)
    _publish(hub, build)
    api = hub.api()
    tagged = api.list_repo_refs("alice/tiny-merge").tags[0].target_commit
    (build / "README.md").write_text((build / "README.md").read_text() + "\nA re-rendered card.\n")
    report = _publish(hub, build)
    assert report.results[0].action == "card updated"
    assert [(c.path, c.kind) for c in report.results[0].changes] == [("README.md", "change")]
    refs = api.list_repo_refs("alice/tiny-merge")
    assert refs.tags[0].target_commit == tagged != refs.branches[0].target_commit
    assert api.list_repo_commits("alice/tiny-merge")[0].title == "Update model card (v1.0.0)"
    assert _publish(hub, build).results[0].action == "up to date"


def test_dry_run_touches_nothing(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b1")
    before = hub.server.app.stats.copy()
    report = publish(build, endpoint=hub.url, token=hub.token, dry_run=True)
    assert report.dry_run and [r.action for r in report.results] == ["would create and publish"] * 2
    assert {c.kind for c in report.results[0].changes} == {"add"}
    assert any(c.path == "model.safetensors" and c.size > 0 for c in report.results[0].changes)
    new = hub.server.app.stats - before
    assert all(k.startswith("GET") or k == "POST /api/validate-yaml" for k in new), new
    assert hub.api().list_models(author="alice") == [] or not list(hub.api().list_models(author="alice"))
    # after a real publish, a dry run of a changed build lists the changes and still writes nothing
    publish(build, endpoint=hub.url, token=hub.token)
    b2 = make_build(tmp_path / "b2", version="1.1.0", seed=5)
    head = hub.api().list_repo_refs("alice/tiny-merge").branches[0].target_commit
    report = publish(b2, endpoint=hub.url, token=hub.token, dry_run=True)
    assert report.results[0].action == "would publish"
    assert ("model.safetensors", "change") in {(c.path, c.kind) for c in report.results[0].changes}
    assert hub.api().list_repo_refs("alice/tiny-merge").branches[0].target_commit == head


def test_invalid_card_stops_before_any_write(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "b1")
    (build / "variants" / "FP8" / "README.md").write_text("---\nlicense: not-a-license\n---\nhi\n")
    with pytest.raises(CardError, match="not-a-license"):
        _publish(hub, build)
    assert not any(k.startswith(("POST /api/repos", "POST /api/{rtype}")) for k in hub.server.app.stats)


def test_private_from_recipe(hub: Hub, tmp_path: Path) -> None:
    _publish(hub, make_build(tmp_path / "b1", private=True, variants=False))
    assert hub.api().model_info("alice/tiny-merge").private is True
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info("alice/tiny-merge")


def test_refuses_to_publish_private_build_into_public_repo(hub: Hub, tmp_path: Path) -> None:
    _publish(hub, make_build(tmp_path / "b1", variants=False))
    with pytest.raises(PublishError, match="private"):
        _publish(hub, make_build(tmp_path / "b2", version="1.1.0", seed=4, private=True, variants=False))
    assert [t.name for t in hub.api().list_repo_refs("alice/tiny-merge").tags] == ["v1.0.0"]


def test_manifest_hashes_are_the_lfs_oids_and_the_server_checks_them(hub: Hub, tmp_path: Path) -> None:
    import json

    build = make_build(tmp_path / "b1", variants=False)
    manifest = json.loads((build / "manifest.json").read_text())
    for f in manifest["variants"][0]["files"]:
        if f["path"] == "model.safetensors":
            f["sha256"] = "0" * 64  # the publisher must not re-hash: the server catches the lie
    (build / "manifest.json").write_text(json.dumps(manifest))
    check_build(build, settings=ChecksSection(measure=False))  # the gate checks this manifest
    with pytest.raises(HubError, match="does not hash to its oid") as err:
        _publish(hub, build)
    assert "/lfs-upload/" not in str(err.value)  # no signed upload URL in the message
    assert [c.title for c in hub.api().list_repo_commits("alice/tiny-merge")] == ["initial commit"]


def test_offline_mode_still_reaches_a_loopback_hub(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    build = make_build(tmp_path / "b1", variants=False, commit_message="First public cut")
    assert _publish(hub, build).results[0].action == "published"
    assert constants.HF_HUB_OFFLINE is True  # restored after publishing
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE"):
        publish(build, endpoint="https://hub.example.com", token=hub.token)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    commit = hub.api().list_repo_commits("alice/tiny-merge")[0]
    assert commit.title == "Publish v1.0.0" and commit.message.startswith("First public cut")


def _lfs_puts(hub: Hub) -> int:
    stats = hub.server.app.stats
    return stats["PUT /lfs-upload/{ticket}"] + stats["PUT /lfs-upload/{ticket}/{part}"]


def test_eval_results_files_are_published_with_the_card(hub: Hub, tmp_path: Path) -> None:
    """``.eval_results/*.yaml`` (written by the card stage) travel with README.md, card-only updates included."""
    from huggingface_hub import parse_eval_result_entries

    build = make_build(tmp_path / "b1", variants=False)
    evals = build / ".eval_results"
    evals.mkdir()
    (evals / "mmlu.yaml").write_text("- dataset:\n    id: cais/mmlu\n    task_id: mmlu\n  value: 64.1\n")
    assert [r.action for r in _publish(hub, build).results] == ["published"]
    api = hub.api()
    assert ".eval_results/mmlu.yaml" in api.list_repo_files("alice/tiny-merge", revision="v1.0.0")
    # a re-rendered card with new numbers is a card update: the tag stays, main gets both files
    (evals / "mmlu.yaml").write_text("- dataset:\n    id: cais/mmlu\n    task_id: mmlu\n  value: 64.3\n")
    (evals / "gsm8k.yaml").write_text("- dataset:\n    id: openai/gsm8k\n    task_id: gsm8k\n  value: 40.0\n")
    report = _publish(hub, build)
    assert report.results[0].action == "card updated"
    assert sorted((c.path, c.kind) for c in report.results[0].changes) == [
        (".eval_results/gsm8k.yaml", "add"), (".eval_results/mmlu.yaml", "change")]
    path = hub.api().hf_hub_download("alice/tiny-merge", ".eval_results/mmlu.yaml", cache_dir=tmp_path / "c")
    assert [e.value for e in parse_eval_result_entries(yaml.safe_load(Path(path).read_text()))] == [64.3]
    assert _publish(hub, build).results[0].action == "up to date"
