"""A live local Hub (alice writes to alice/* and acme/*) with the stand-in parents published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from publisher.hub.server import LocalHub, Settings
from tests.streaming.kit import make_parents, publish_parents


@dataclass
class Parents:
    server: LocalHub
    url: str
    token: str
    folders: dict[str, Path]
    commits: dict[str, str]

    def api(self) -> HfApi:
        return HfApi(endpoint=self.url, token=self.token)


@pytest.fixture(autouse=True)
def _online_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


@pytest.fixture
def parents(tmp_path: Path) -> Iterator[Parents]:
    settings = Settings(multipart_threshold=8 << 20, chunk_size=4 << 20)  # one PUT per shard: uploads are countable
    with LocalHub(tmp_path / "hub-root", settings=settings) as server:
        token = server.create_token("alice", "write", orgs=("acme",))
        folders = make_parents(tmp_path / "parents")
        commits = publish_parents(HfApi(endpoint=server.url, token=token), folders)
        yield Parents(server, server.url, token, folders, commits)
