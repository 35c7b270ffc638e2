"""The offline rules shared by the server and the publisher: names, paths, refs, card metadata."""

from __future__ import annotations

import pytest

from publisher.card.licenses import HUB_LICENSES
from publisher.hub.cardcheck import check_card
from publisher.hub.ids import (
    InvalidName,
    check_path_in_repo,
    check_ref_name,
    is_repo_id,
    split_repo_id,
)
from publisher.hub.server.routes_files import parse_range
from publisher.hub.server.routes_upload import matches_gitattributes


def test_repo_ids() -> None:
    assert split_repo_id("MatthieuJ/ING_2003M3_SLERP") == ("MatthieuJ", "ING_2003M3_SLERP")
    assert is_repo_id("gpt2") and not is_repo_id("gpt2", allow_single=False)
    for bad in ("a/b/c", "a/..", "a/.x", "a/x-", "a/x.git", "a/x--y", "", "a/" + "x" * 97, "a/b c", "ü/x"):
        with pytest.raises(InvalidName):
            split_repo_id(bad)


def test_paths_and_refs() -> None:
    assert check_path_in_repo("a/b/model.safetensors") == "a/b/model.safetensors"
    for bad in ("", "/abs", "a/../b", "..", "a//b", "a/./b", ".git/x", "a/.GIT/b", "x\x01", "a\\b", "C:/x"):
        with pytest.raises(InvalidName):
            check_path_in_repo(bad)
    for good in ("main", "v1.0.0", "feature/x", "release-2026.01"):
        check_ref_name(good)
    for bad in ("", "a..b", "-x", "x.lock", "a b", "x~1", "refs/heads/x", "x/", "@", "a/.b", "x@{1}"):
        with pytest.raises(InvalidName):
            check_ref_name(bad)


def test_card_checks() -> None:
    ok = check_card("---\nlicense: llama3.1\nbase_model: [a/b, c/d]\nbase_model_relation: merge\n---\ntext")
    assert ok.ok and ok.metadata["license"] == "llama3.1"
    assert check_card("no front matter").warnings and check_card("no front matter").ok
    assert not check_card("---\nlicense: [apache-2.0, nope]\n---\n").ok
    assert "apache-2.0" in HUB_LICENSES and "other" in HUB_LICENSES
    index = "model-index:\n- name: m\n  results:\n  - task: {type: t}\n    dataset: {type: d, name: D}\n    metrics: [{type: acc, value: 0.5}]\n"
    assert check_card(f"---\n{index}---\n").ok
    broken = index.replace("value: 0.5", "name: x")
    assert "value" in " ".join(check_card(f"---\n{broken}---\n").errors)


def test_gitattributes_and_ranges() -> None:
    assert matches_gitattributes("*.safetensors", "sub/model.safetensors")
    assert matches_gitattributes("saved_model/**/*", "saved_model/a/b.pb")
    assert not matches_gitattributes("saved_model/**/*", "other/saved_model.txt")
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-5", 100) == (95, 99)
    assert parse_range("bytes=0-5,10-20", 100) is None
