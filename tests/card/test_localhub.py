"""Lineage through the real huggingface_hub client against the project's local Hub server.

Parent cards are uploaded with HfApi (so the server's validate-yaml accepts them), the build
pins its direct parents to the commit shas those uploads returned, and the card reads
everything back over HTTP, the way it reads the real Hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from cardkit import HUB
from huggingface_hub import HfApi, constants

from publisher.card.fetchers import FolderFetcher, HubFetcher
from publisher.card.render import render_cards
from publisher.errors import CardError
from publisher.hub.server import LocalHub

PARENTS = [
    "chihoonlee10/T3Q-DPO-Mistral-7B",
    "MatthieuJ/ING_2003M2_SLERP",
    "mistralai/Mistral-7B-v0.1",
    "mistralai/Mistral-7B-Instruct-v0.2",
]


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalHub, dict[str, str]]]:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    with LocalHub(tmp_path / "hub-root") as server:
        token = server.create_token("curator", "write", orgs=tuple(sorted({r.split("/")[0] for r in PARENTS})))
        api = HfApi(endpoint=server.url, token=token)
        shas = {}
        for repo in PARENTS:
            api.create_repo(repo, exist_ok=True)
            info = api.upload_file(path_or_fileobj=HUB / repo / "README.md", path_in_repo="README.md", repo_id=repo)
            shas[repo] = info.oid
        yield server, shas


def test_lineage_over_the_local_hub(
    tmp_path: Path, local_hub: tuple[LocalHub, dict[str, str]], make_build: Callable[..., Path]
) -> None:
    server, shas = local_hub
    build = make_build("ing_2003m3_slerp.yaml", revisions=shas)
    fetcher = HubFetcher(endpoint=server.url, token=False, cache_dir=tmp_path / "hf-cache")
    over_http = render_cards(build, fetcher=fetcher, strict=True, write=False)
    assert over_http.warnings == []
    lineage = over_http.lineage
    assert lineage is not None
    m2 = lineage.root.parents[1]
    assert (m2.repo_id, m2.revision, m2.relation, m2.method, m2.source) == (
        "MatthieuJ/ING_2003M2_SLERP", shas["MatthieuJ/ING_2003M2_SLERP"], "merge", "slerp", "hub",
    )
    assert [p.repo_id for p in m2.parents] == ["chihoonlee10/T3Q-DPO-Mistral-7B", "mistralai/Mistral-7B-Instruct-v0.2"]
    assert [p.repo_id for p in m2.parents[1].parents] == ["mistralai/Mistral-7B-v0.1"]
    # the same tree as from the folder the cards were uploaded from (only the pinned shas differ)
    from_folder = render_cards(build, fetcher=FolderFetcher(HUB), write=False)
    assert [c.text for c in over_http.cards] == [c.text for c in from_folder.cards]
    assert f"@ `{shas['MatthieuJ/ING_2003M2_SLERP'][:12]}`" in over_http.cards[0].text


def test_missing_revision_and_missing_repo_on_the_local_hub(
    tmp_path: Path, local_hub: tuple[LocalHub, dict[str, str]], make_build: Callable[..., Path]
) -> None:
    server, shas = local_hub
    pins = dict(shas)
    pins["MatthieuJ/ING_2003M2_SLERP"] = "0" * 40  # a commit the repo never had
    build = make_build("saul_mistral_v0_2_7b_slerp.yaml", revisions=pins)  # Equall/Saul-Base is not on this hub
    fetcher = HubFetcher(endpoint=server.url, token=False, cache_dir=tmp_path / "hf-cache")
    result = render_cards(build, fetcher=fetcher)
    assert any("Equall/Saul-Base" in w and "does not exist or is private" in w for w in result.warnings)
    with pytest.raises(CardError, match="strict: ancestry of Equall/Saul-Base is unknown"):
        render_cards(build, fetcher=fetcher, strict=True)
    build2 = make_build("ing_2003m3_slerp.yaml", revisions=pins)
    result2 = render_cards(build2, fetcher=fetcher, write=False)
    assert any(f"revision {'0' * 40} of MatthieuJ/ING_2003M2_SLERP does not exist" in w for w in result2.warnings)


def test_the_hub_cache_serves_repeated_reads_offline(
    tmp_path: Path, local_hub: tuple[LocalHub, dict[str, str]], make_build: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, shas = local_hub
    build = make_build("ing_2003m3_slerp.yaml", revisions=shas)
    cache = tmp_path / "hf-cache"
    online = render_cards(build, fetcher=HubFetcher(endpoint=server.url, token=False, cache_dir=cache), write=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = render_cards(build, fetcher=HubFetcher(endpoint=server.url, token=False, cache_dir=cache), write=False, strict=True)
    assert [c.text for c in offline.cards] == [c.text for c in online.cards]
    # a fresh cache has nothing: offline, the ancestry is unknown, and strict says so
    with pytest.raises(CardError, match="cannot be reached and is not in the cache"):
        render_cards(build, fetcher=HubFetcher(endpoint=server.url, token=False, cache_dir=tmp_path / "empty"), strict=True)


def test_cli_reads_parents_from_the_local_hub(
    tmp_path: Path, local_hub: tuple[LocalHub, dict[str, str]], make_build: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from publisher.cli import main

    server, shas = local_hub
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    build = make_build("ing_2003m3_slerp.yaml", revisions=shas)
    assert main(["card", str(build), "--strict", "--endpoint", server.url]) == 0
    assert "MatthieuJ/ING\\_2003M2\\_SLERP" in (build / "README.md").read_text()
