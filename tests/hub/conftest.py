"""Fixtures for the Hub tests: a live local Hub with a write token for alice (member of acme)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.hub.server import LocalHub, Settings
from tests.hub.helpers import Hub


@pytest.fixture(autouse=True)
def _online_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE=1; these tests talk to a server on 127.0.0.1."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    settings = Settings(multipart_threshold=512 << 10, chunk_size=256 << 10, page_size=1000)
    with LocalHub(tmp_path / "hub-root", settings=settings) as server:
        token = server.create_token("alice", "write", orgs=("acme",))
        yield Hub(server, server.url, token, tmp_path / "hub-root")


