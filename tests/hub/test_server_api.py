"""The local Hub against the real huggingface_hub client: every endpoint the publisher and loaders use."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from publisher.hub.server import FaultRule, LocalHub, Settings
from tests.hub.helpers import Hub, card


def _seed(api: HfApi, repo_id: str = "alice/m") -> str:
    api.create_repo(repo_id)
    return api.create_commit(
        repo_id,
        [
            CommitOperationAdd("README.md", card(repo_id).encode()),
            CommitOperationAdd("config.json", b'{"model_type": "mistral"}'),
            CommitOperationAdd("weights.bin", os.urandom(3000)),
            CommitOperationAdd("sub/dir/notes.txt", b"hello"),
            CommitOperationAdd("empty.txt", b""),
        ],
        commit_message="first",
    ).oid


def test_whoami_and_repo_lifecycle(hub: Hub) -> None:
    api = hub.api()
    me = api.whoami()
    assert me["name"] == "alice" and [o["name"] for o in me["orgs"]] == ["acme"]
    assert me["auth"]["accessToken"]["role"] == "write"
    url = api.create_repo("alice/x")
    assert url.repo_id == "alice/x" and str(url).startswith(hub.url)
    assert api.create_repo("alice/x", exist_ok=True).repo_id == "alice/x"
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo("alice/x")
    assert e.value.response.status_code == 409
    commits = api.list_repo_commits("alice/x")
    assert [(c.title, c.authors) for c in commits] == [("initial commit", ["system"])]
    assert api.list_repo_files("alice/x") == [".gitattributes"]
    api.delete_repo("alice/x")
    assert not api.repo_exists("alice/x")
    api.delete_repo("alice/x", missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo("alice/x")


def test_info_tree_refs_commits_at_revisions(tmp_path: Path) -> None:
    settings = Settings(page_size=2, commits_page_size=2)
    with LocalHub(tmp_path / "root", settings=settings) as server:
        api = HfApi(endpoint=server.url, token=server.create_token("alice"))
        first = _seed(api)
        second = api.create_commit(
            "alice/m", [CommitOperationDelete("weights.bin"), CommitOperationAdd("more.txt", b"x")],
            commit_message="second", parent_commit=first,
        ).oid
        old = api.model_info("alice/m", revision=first, files_metadata=True)
        assert old.sha == first and "weights.bin" in {s.rfilename for s in old.siblings or []}
        lfs = {s.rfilename: s.lfs for s in old.siblings or []}
        assert lfs["weights.bin"] is not None and lfs["README.md"] is None  # *.bin is LFS by .gitattributes
        assert lfs["weights.bin"].size == 3000
        new = api.model_info("alice/m")
        assert new.sha == second and new.card_data["license"] == "apache-2.0"  # type: ignore[index]
        assert new.pipeline_tag == "text-generation" and new.library_name == "transformers"
        # paginated listings (2 per page) come back whole
        files = api.list_repo_files("alice/m")
        assert files == sorted([".gitattributes", "README.md", "config.json", "empty.txt", "more.txt", "sub/dir/notes.txt"])
        top = {i.path for i in api.list_repo_tree("alice/m")}
        assert top == {".gitattributes", "README.md", "config.json", "empty.txt", "more.txt", "sub"}
        assert {i.path for i in api.list_repo_tree("alice/m", path_in_repo="sub/dir")} == {"sub/dir/notes.txt"}
        with pytest.raises(EntryNotFoundError):
            list(api.list_repo_tree("alice/m", path_in_repo="nope"))
        assert [c.title for c in api.list_repo_commits("alice/m")] == ["second", "first", "initial commit"]
        assert [c.title for c in api.list_repo_commits("alice/m", revision=first)] == ["first", "initial commit"]
        with pytest.raises(RevisionNotFoundError):
            api.model_info("alice/m", revision="no-such-branch")
        assert api.file_exists("alice/m", "weights.bin", revision=first[:7])
        assert not api.file_exists("alice/m", "weights.bin")


def test_validate_yaml_rejects_what_the_hub_rejects(hub: Hub) -> None:
    api = hub.api()
    api.create_repo("alice/cards")
    bad = {
        "- just\n- a list\n": "mapping",
        "license: made-up-1.0\n": "made-up-1.0",
        "license: other\n": "license_name",
        "license: other\nlicense_name: my-license\n": "license_link",
        "base_model: not/a/repo\n": "not/a/repo",
        "base_model: [ok/model, 'bad id']\n": "bad id",
        "base_model: a/b\nbase_model_relation: blend\n": "base_model_relation",
        "model-index:\n- name: m\n  results:\n  - task: {type: text-generation}\n    dataset: {type: x}\n    metrics: [{type: acc, value: 1}]\n": "dataset.name",
        "license: [unclosed\n": "not valid YAML",
    }
    for meta, needle in bad.items():
        with pytest.raises(ValueError, match="Invalid metadata") as err:
            api.upload_file(path_or_fileobj=f"---\n{meta}---\n# card\n".encode(), path_in_repo="README.md", repo_id="alice/cards")
        assert needle in str(err.value), (meta, str(err.value))
    assert [c.title for c in api.list_repo_commits("alice/cards")] == ["initial commit"]
    good = "---\nlicense: other\nlicense_name: my-license-1.0\nlicense_link: LICENSE\nbase_model: [a/b, c/d]\n---\n# ok\n"
    api.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id="alice/cards")
    assert api.model_info("alice/cards").card_data["license_name"] == "my-license-1.0"  # type: ignore[index]


def test_commit_rules_parent_and_missing_files(hub: Hub) -> None:
    api = hub.api()
    first = _seed(api)
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="more.txt", repo_id="alice/m")
    with pytest.raises(HfHubHTTPError) as e:
        api.create_commit("alice/m", [CommitOperationAdd("x.txt", b"x")], commit_message="stale", parent_commit=first)
    assert e.value.response.status_code == 412
    with pytest.raises(EntryNotFoundError):
        api.delete_file("nope.txt", "alice/m")
    api.delete_folder("sub", "alice/m")
    assert "sub/dir/notes.txt" not in api.list_repo_files("alice/m")


def test_injected_failure_mid_commit_leaves_previous_state(hub: Hub) -> None:
    api = hub.api()
    first = _seed(api)
    hub.server.faults.add(FaultRule("raise", path="commit.before-ref", point=True))
    with pytest.raises(HfHubHTTPError) as e:
        api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id="alice/m")
    assert e.value.response.status_code == 500
    assert api.model_info("alice/m").sha == first
    assert "new.txt" not in api.list_repo_files("alice/m")
    api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id="alice/m")
    assert "new.txt" in api.list_repo_files("alice/m")


def test_tags_and_branches(hub: Hub) -> None:
    api = hub.api()
    first = _seed(api)
    api.create_tag("alice/m", tag="v1.0.0", tag_message="first release")
    with pytest.raises(HfHubHTTPError) as e:
        api.create_tag("alice/m", tag="v1.0.0")
    assert e.value.response.status_code == 409
    api.create_tag("alice/m", tag="v1.0.0", exist_ok=True)
    api.create_branch("alice/m", branch="dev")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="dev.txt", repo_id="alice/m", revision="dev")
    api.create_tag("alice/m", tag="dev-1", revision="dev")
    refs = api.list_repo_refs("alice/m")
    assert {b.name for b in refs.branches} == {"main", "dev"}
    tags = {t.name: t.target_commit for t in refs.tags}
    assert tags["v1.0.0"] == first and tags["dev-1"] != first
    assert "dev.txt" not in api.list_repo_files("alice/m")
    assert hub.server.app.store.get(hub.server.app.key("model", "alice", "m")).tag_message("v1.0.0") == "first release"  # type: ignore[union-attr]
    with pytest.raises(BadRequestError):
        api.create_branch("alice/m", branch="refs/pr/5")
    with pytest.raises(BadRequestError):
        api.create_tag("alice/m", tag="bad..name")
    api.delete_tag("alice/m", tag="dev-1")
    api.delete_branch("alice/m", branch="dev")
    refs = api.list_repo_refs("alice/m")
    assert [t.name for t in refs.tags] == ["v1.0.0"] and [b.name for b in refs.branches] == ["main"]


def test_lfs_multipart_dedupe_and_downloads(hub: Hub, tmp_path: Path) -> None:
    api = hub.api()
    api.create_repo("alice/big")
    payload = os.urandom(1_300_000)  # over the fixture's 512 kB threshold: 5 parts of 256 KiB
    api.upload_file(path_or_fileobj=payload, path_in_repo="model.safetensors", repo_id="alice/big")
    stats = hub.server.app.stats
    assert stats["PUT /lfs-upload/{ticket}/{part}"] == 5 and stats["POST /lfs-upload/{ticket}"] == 1
    api.upload_file(path_or_fileobj=payload, path_in_repo="copy.safetensors", repo_id="alice/big")
    assert stats["PUT /lfs-upload/{ticket}/{part}"] == 5  # same bytes: nothing sent again
    got = hf_hub_download("alice/big", "copy.safetensors", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    assert Path(got).read_bytes() == payload
    req = urllib.request.Request(f"{hub.url}/alice/big/resolve/main/model.safetensors", headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 206 and r.headers["Content-Range"] == f"bytes 100-199/{len(payload)}"
        assert r.read() == payload[100:200]
    req = urllib.request.Request(f"{hub.url}/alice/big/resolve/main/model.safetensors", headers={"Range": "bytes=-10"})
    with urllib.request.urlopen(req) as r:
        assert r.read() == payload[-10:]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            f"{hub.url}/alice/big/resolve/main/model.safetensors", headers={"Range": f"bytes={len(payload)}-"}))
    assert e.value.code == 416
    head = urllib.request.urlopen(urllib.request.Request(f"{hub.url}/alice/big/resolve/main/copy.safetensors", method="HEAD"))
    assert head.headers["X-Repo-Commit"] == api.model_info("alice/big").sha
    assert head.headers["ETag"].strip('"') == __import__("hashlib").sha256(payload).hexdigest()
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("alice/big", "nope", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/big", "copy.safetensors", revision="nope", endpoint=hub.url, token=hub.token, cache_dir=tmp_path / "c")


def test_history_and_tags_survive_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with LocalHub(root) as server:
        token = server.create_token("alice")
        api = HfApi(endpoint=server.url, token=token)
        first = _seed(api)
        api.create_tag("alice/m", tag="v1")
        api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id="alice/m")
        expected = snapshot_download("alice/m", revision="v1", endpoint=server.url, token=token, cache_dir=tmp_path / "c1")
        before = {p.relative_to(expected).as_posix(): p.read_bytes() for p in Path(expected).rglob("*") if p.is_file()}
    with LocalHub(root) as server:
        api = HfApi(endpoint=server.url, token=token)
        assert {t.name: t.target_commit for t in api.list_repo_refs("alice/m").tags} == {"v1": first}
        assert [c.title for c in api.list_repo_commits("alice/m")][:2] == ["Upload two.txt with huggingface_hub", "first"]
        got = snapshot_download("alice/m", revision="v1", endpoint=server.url, token=token, cache_dir=tmp_path / "c2")
        assert {p.relative_to(got).as_posix(): p.read_bytes() for p in Path(got).rglob("*") if p.is_file()} == before


def test_one_server_per_root(hub: Hub) -> None:
    from publisher.hub.server import RootLocked

    with pytest.raises(RootLocked):
        LocalHub(hub.root).start()


def test_browser_pages_escape_the_card(hub: Hub) -> None:
    api = hub.api()
    api.create_repo("alice/page")
    api.upload_file(path_or_fileobj=b"---\nlicense: mit\ntags: [demo]\n---\n# Title\n\n<script>alert(1)</script> **bold**\n",
                    path_in_repo="README.md", repo_id="alice/page")
    api.create_repo("alice/hidden", private=True)
    index = urllib.request.urlopen(f"{hub.url}/").read().decode()
    assert "alice/page" in index and "alice/hidden" not in index
    page = urllib.request.urlopen(f"{hub.url}/alice/page").read().decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert "<strong>bold</strong>" in page and "<h1>Title</h1>" in page
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{hub.url}/alice/hidden")
    assert e.value.code in (401, 404)


def test_cached_snapshot_after_commit_equals_a_fresh_read(hub: Hub) -> None:
    from publisher.hub.server.storage import Store

    api = hub.api()
    _seed(api)
    api.create_commit("alice/m", [CommitOperationDelete("sub/dir/notes.txt"), CommitOperationAdd("a/b/c.bin", b"\0" * 10)],
                      commit_message="more")
    key = hub.server.app.key("model", "alice", "m")
    live = hub.server.app.store.get(key)
    assert live is not None
    head = live.resolve("main")
    fresh = Store(hub.root).get(key)
    assert fresh is not None
    cached, walked = live.snapshot(head), fresh.snapshot(head)
    assert cached.files == walked.files and cached.dirs == walked.dirs
    assert "sub" not in cached.dirs and cached.files["a/b/c.bin"].lfs is not None
