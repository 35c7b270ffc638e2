"""Access tokens of the local Hub: read or write scope, per user, with org memberships.

Tokens live in ``ROOT/tokens.json`` as sha256 digests only, so the file never holds a
usable secret. ``publisher hub token create`` may add tokens while a server runs: the
server re-reads the file when it changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import secrets
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from publisher.hub.server.accounts import check_new_names
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.objects import RepoKey
from publisher.hub.server.rootdir import make_root

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Identity:
    user: str
    scope: Scope
    orgs: tuple[str, ...]
    token_name: str
    repo: RepoKey | None = None  # a token scoped to one repo (trusted publishing) owns no namespace

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset() if self.repo is not None else frozenset((self.user, *self.orgs))

    def owns(self, namespace: str) -> bool:
        """Exact: names are unique ignoring case (``accounts``), so ``BOB`` never owns ``bob``."""
        return namespace in self.namespaces

    def can_read(self, key: RepoKey) -> bool:
        """Private repos: those of the namespaces owned, or the one repo of a scoped token."""
        return key == self.repo if self.repo is not None else self.owns(key.namespace)

    def can_write(self, namespace: str) -> bool:
        return self.scope == "write" and self.owns(namespace)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "tokens.json"
        self._lock_path = Path(root) / "tokens.lock"
        self._mutex = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._data: dict[str, Any] = {"users": {}, "tokens": []}
        self._by_digest: dict[str, Identity] = {}

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        make_root(self._lock_path.parent)
        with open(self._lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._data, self._by_digest, self._stamp = {"users": {}, "tokens": []}, {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        data = json.loads(self.path.read_text())
        users = data.get("users", {})
        by_digest = {}
        for t in data.get("tokens", []):
            orgs = tuple(users.get(t["user"], {}).get("orgs", []))
            by_digest[t["sha256"]] = Identity(t["user"], t["scope"], orgs, t["name"])
        self._data, self._by_digest, self._stamp = data, by_digest, stamp

    def lookup(self, token: str) -> Identity | None:
        with self._mutex:
            self._load()
            return self._by_digest.get(_digest(token))

    def create(self, user: str, scope: Scope = "write", *, orgs: tuple[str, ...] = (), name: str | None = None) -> str:
        """A new token for ``user`` (created if new); ``orgs`` are added to the user's orgs."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        token = "hf_" + "".join(secrets.choice(_ALPHABET) for _ in range(34))
        with self._file_lock(), self._mutex:
            self._stamp = None
            self._load()
            data = self._data
            check_new_names({u: v.get("orgs", []) for u, v in data["users"].items()}, user, orgs)
            entry = data["users"].setdefault(user, {"orgs": []})
            entry["orgs"] = sorted(set(entry["orgs"]) | set(orgs))
            data["tokens"].append(
                {
                    "name": name or f"{user}-{scope}-{len(data['tokens']) + 1}",
                    "user": user,
                    "scope": scope,
                    "sha256": _digest(token),
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            make_root(self.path.parent)
            write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode())
            self.path.chmod(0o600)
            self._stamp = None
        return token

    def users(self) -> dict[str, tuple[str, ...]]:
        with self._mutex:
            self._load()
            return {u: tuple(v.get("orgs", [])) for u, v in self._data["users"].items()}
