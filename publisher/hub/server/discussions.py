"""Pull requests as the Hub keeps them: a ref ``refs/pr/N`` plus a discussion record.

The records live in ``REPO/hub-discussions.json`` (replaced atomically, under the repo's
lock). Only pull requests are stored: the local Hub refuses plain discussions and comments
rather than accepting text it would never show anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from publisher.hub.server.atomic import write_atomic

FILE = "hub-discussions.json"


@dataclass(frozen=True)
class PullRequest:
    num: int
    title: str
    description: str
    author: str
    base: str  # the branch it was opened against
    created_at: float
    status: str = "open"

    def item(self, repo_id: str, repo_type: str) -> dict[str, Any]:
        """The JSON the client's ``Discussion`` is built from."""
        return {
            "num": self.num,
            "title": self.title,
            "status": self.status,
            "isPullRequest": True,
            "createdAt": datetime.fromtimestamp(self.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "author": {"name": self.author, "type": "user"},
            "repo": {"name": repo_id, "type": repo_type},
            "numComments": 0,
            "pinned": False,
        }


def load(repo_path: Path) -> list[PullRequest]:
    try:
        data = json.loads((repo_path / FILE).read_text())
    except FileNotFoundError:
        return []
    return [PullRequest(**item) for item in data]


def save(repo_path: Path, items: list[PullRequest]) -> None:
    write_atomic(repo_path / FILE, json.dumps([asdict(p) for p in items], indent=1).encode())
