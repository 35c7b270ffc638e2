"""Client features that used to be silent no-ops or missing routes (issue 12 §5), through the real
huggingface_hub client and the ``hf`` command line over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, RepoFile, RepoFolder, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.hub.helpers import Hub


def _card(tags: list[str], license: str = "apache-2.0") -> bytes:
    return ("---\nlicense: " + license + "\ntags:\n" + "".join(f"- {t}\n" for t in tags) + "---\n# card\n").encode()


def test_list_models_filters_and_sorts(hub: Hub) -> None:
    api = hub.api()
    for name, tags, lic in (("first", ["merge", "slerp"], "mit"), ("second", ["merge"], "apache-2.0"),
                            ("third", ["other"], "mit")):
        api.create_repo(f"alice/{name}")
        api.upload_file(path_or_fileobj=_card(tags, lic), path_in_repo="README.md", repo_id=f"alice/{name}")
    api.upload_file(path_or_fileobj=b"later", path_in_repo="x.txt", repo_id="alice/first")  # newest change

    assert {m.id for m in api.list_models(filter="merge")} == {"alice/first", "alice/second"}
    assert {m.id for m in api.list_models(filter=["merge", "license:mit"])} == {"alice/first"}
    assert [m.id for m in api.list_models(filter="nothing-has-this")] == []
    assert [m.id for m in api.list_models(author="alice", sort="created_at")] == ["alice/third", "alice/second", "alice/first"]
    assert [m.id for m in api.list_models(author="alice", sort="last_modified")] == ["alice/first", "alice/third",
                                                                                    "alice/second"]
    assert [m.id for m in api.list_models(author="alice", sort="created_at", limit=1)] == ["alice/third"]
    assert len(list(api.list_models(author="alice", sort="likes"))) == 3
    with pytest.raises(HfHubHTTPError) as e:
        list(api.list_models(num_parameters="min:1B"))
    assert e.value.response.status_code == 400 and "num_parameters" in str(e.value)


def test_gated_is_stored_and_reported(hub: Hub) -> None:
    api = hub.api()
    api.create_repo("alice/gate")
    assert api.model_info("alice/gate").gated is False
    api.update_repo_settings("alice/gate", gated="manual")
    assert api.model_info("alice/gate").gated == "manual"
    assert "alice/gate" in {m.id for m in api.list_models(gated=True)}
    assert "alice/gate" not in {m.id for m in api.list_models(gated=False)}
    api.update_repo_settings("alice/gate", gated=False, private=True)
    info = api.model_info("alice/gate")
    assert info.gated is False and info.private is True


def test_expand_reports_last_commits(hub: Hub) -> None:
    api = hub.api()
    api.create_repo("alice/hist")
    first = api.upload_file(path_or_fileobj=b"a", path_in_repo="docs/a.txt", repo_id="alice/hist", commit_message="add a")
    second = api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="alice/hist", commit_message="add b")
    items = {i.path: i for i in api.list_repo_tree("alice/hist", expand=True)}
    assert isinstance(items["docs"], RepoFolder) and isinstance(items["b.txt"], RepoFile)
    assert items["docs"].last_commit is not None and items["docs"].last_commit.oid == first.oid
    assert items["b.txt"].last_commit is not None and items["b.txt"].last_commit.title == "add b"
    assert items["b.txt"].last_commit.oid == second.oid
    assert items[".gitattributes"].last_commit is not None and items[".gitattributes"].last_commit.title == "initial commit"
    infos = {i.path: i for i in api.get_paths_info("alice/hist", ["docs/a.txt", "b.txt"], expand=True)}
    assert infos["docs/a.txt"].last_commit.oid == first.oid and infos["b.txt"].last_commit.oid == second.oid
    assert all(i.last_commit is None for i in api.list_repo_tree("alice/hist"))


def test_move_duplicate_and_super_squash(hub: Hub, tmp_path: Path) -> None:
    api = hub.api()
    api.create_repo("alice/old")
    big = os.urandom(3000)
    api.upload_file(path_or_fileobj=big, path_in_repo="w.bin", repo_id="alice/old")
    api.upload_file(path_or_fileobj=b"t", path_in_repo="t.txt", repo_id="alice/old")
    api.create_tag("alice/old", tag="v1")
    api.move_repo("alice/old", "acme/new")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/old")
    assert sorted(api.list_repo_files("acme/new")) == [".gitattributes", "t.txt", "w.bin"]
    assert len(api.list_repo_commits("acme/new")) == 3
    path = hf_hub_download("acme/new", "w.bin", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c1")
    assert Path(path).read_bytes() == big

    bob = HfApi(endpoint=hub.url, token=hub.server.create_token("bob"))
    with pytest.raises(HfHubHTTPError) as e:
        bob.move_repo("acme/new", "bob/stolen")
    assert e.value.response.status_code in (403, 404)
    copy = bob.duplicate_repo("acme/new", to_id="bob/copy", private=True)
    assert copy.repo_id == "bob/copy"
    assert bob.model_info("bob/copy").private is True
    path = hf_hub_download("bob/copy", "w.bin", endpoint=hub.url, token=bob.token, cache_dir=tmp_path / "c2")
    assert Path(path).read_bytes() == big
    api.update_repo_settings("acme/new", private=True)
    with pytest.raises(RepositoryNotFoundError):
        bob.duplicate_repo("acme/new", to_id="bob/copy2")

    api.super_squash_history("acme/new", commit_message="squashed")
    commits = api.list_repo_commits("acme/new")
    assert [c.title for c in commits] == ["squashed"]
    assert sorted(api.list_repo_files("acme/new")) == [".gitattributes", "t.txt", "w.bin"]
    assert api.list_repo_refs("acme/new").tags[0].name == "v1"  # tags keep the old history


def test_pull_requests_are_refs(hub: Hub, tmp_path: Path) -> None:
    api = hub.api()
    api.create_repo("alice/prs")
    main_before = api.model_info("alice/prs").sha
    pr = api.create_commit("alice/prs", [CommitOperationAdd("proposal.txt", b"please")], commit_message="Proposal",
                           create_pr=True)
    assert pr.pr_revision == "refs/pr/1" and pr.pr_num == 1
    assert api.model_info("alice/prs").sha == main_before  # main is untouched
    refs = api.list_repo_refs("alice/prs", include_pull_requests=True)
    assert refs.pull_requests is not None
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", pr.oid)]
    assert [b.name for b in refs.branches] == ["main"]
    got = hf_hub_download("alice/prs", "proposal.txt", revision="refs/pr/1", endpoint=hub.url, token=hub.token,
                          cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == b"please"
    more = api.create_commit("alice/prs", [CommitOperationAdd("more.txt", b"more")], commit_message="More",
                             revision="refs/pr/1")
    assert api.list_repo_refs("alice/prs", include_pull_requests=True).pull_requests[0].target_commit == more.oid  # type: ignore[index]

    empty = api.create_pull_request("alice/prs", title="Empty PR")
    assert empty.num == 2 and empty.is_pull_request and empty.git_reference == "refs/pr/2"
    listed = list(api.get_repo_discussions("alice/prs"))
    assert [(d.num, d.title, d.is_pull_request) for d in listed] == [(2, "Empty PR", True), (1, "Proposal", True)]
    for refused in (lambda: api.comment_discussion("alice/prs", 1, "hi"),
                    lambda: api.merge_pull_request("alice/prs", 1),
                    lambda: api.create_discussion("alice/prs", title="question")):
        with pytest.raises(HfHubHTTPError) as e:
            refused()
        assert e.value.response.status_code == 400 and "not supported by the local Hub" in str(e.value)


def _hf(hub: Hub, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hf", path=str(Path(os.sys.executable).parent))
    assert exe is not None, "the hf command line comes with huggingface_hub"
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_TOKEN=hub.token, HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", COLUMNS="200", NO_COLOR="1")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120)


def test_hf_cli_repo_commands(hub: Hub, tmp_path: Path) -> None:
    api = hub.api()
    api.create_repo("alice/listed", private=True)
    api.create_repo("acme/org-repo")
    listed = _hf(hub, tmp_path, "repos", "ls")
    assert listed.returncode == 0, listed.stderr
    assert "alice/listed" in listed.stdout and "acme/org-repo" not in listed.stdout
    org = _hf(hub, tmp_path, "repos", "ls", "--namespace", "acme")
    assert org.returncode == 0 and "acme/org-repo" in org.stdout, org.stderr
    moved = _hf(hub, tmp_path, "repos", "move", "alice/listed", "alice/renamed")
    assert moved.returncode == 0, moved.stderr
    assert api.repo_exists("alice/renamed") and not api.repo_exists("alice/listed")
    gated = _hf(hub, tmp_path, "repos", "settings", "alice/renamed", "--gated", "auto")
    assert gated.returncode == 0, gated.stderr
    assert api.model_info("alice/renamed").gated == "auto"
    dup = _hf(hub, tmp_path, "repos", "duplicate", "alice/renamed", "alice/twin")
    assert dup.returncode == 0, dup.stderr
    assert api.model_info("alice/twin").private is True
