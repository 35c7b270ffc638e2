"""Large files: stored once by sha256, verified before they exist, linked into the repos that own them.

An object lives at ``ROOT/lfs/objects/aa/bb/OID`` and appears in a repo only as a hard link
``REPO/lfs/objects/aa/bb/OID`` (git-lfs's own layout), made after the upload's bytes hashed
to OID. A repo may reference only objects linked into it, so knowing a sha256 is not enough
to read another repo's private file. Uploads are authorised by signed, expiring URLs
because the client sends LFS PUTs without its token.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from publisher.hub.server.errors import BadRequest

OID_RE = re.compile(r"\A[0-9a-f]{64}\Z")  # \Z, not $: no trailing newline


class LfsStore:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        (root / "objects").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _rel(oid: str) -> Path:
        if not OID_RE.fullmatch(oid):
            raise BadRequest(f"invalid LFS oid {oid!r}: expected 64 lowercase hex characters")
        return Path("objects", oid[:2], oid[2:4], oid)

    def object_path(self, oid: str) -> Path:
        return self.root / self._rel(oid)

    def linked_path(self, repo_path: Path, oid: str) -> Path:
        return repo_path / "lfs" / self._rel(oid)

    def linked_size(self, repo_path: Path, oid: str) -> int | None:
        try:
            return self.linked_path(repo_path, oid).stat().st_size
        except FileNotFoundError:
            return None

    def store(self, repo_path: Path, oid: str, size: int, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` to a temp file, check size and sha256, then publish and link it."""
        self._rel(oid)
        tmp = self.tmp / f"upload-{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        total = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    total += len(chunk)
                    if total > size:
                        raise BadRequest(f"upload for {oid} is larger than the announced {size} bytes")
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            _check(oid, size, total, digest.hexdigest())
            self._install(tmp, oid)
        finally:
            tmp.unlink(missing_ok=True)
        self.link(repo_path, oid)

    def adopt(self, repo_path: Path, oid: str, size: int, path: Path, sha256: str) -> None:
        """Publish and link a complete upload already on disk (``path``, hashed while received as
        ``sha256``), once its size and digest are the announced ones; ``path`` is left for the caller."""
        self._rel(oid)
        _check(oid, size, path.stat().st_size, sha256)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._install(path, oid)
        self.link(repo_path, oid)

    def _install(self, tmp: Path, oid: str) -> None:
        target = self.object_path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        # os.link is atomic: the object appears complete or not at all; if it exists,
        # an identical upload won the race and the object stays stored once.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, target)

    def link(self, repo_path: Path, oid: str) -> None:
        link = self.linked_path(repo_path, oid)
        link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.link(self.object_path(oid), link)

    def gc(self, keep_younger_than_s: float = 3600.0) -> int:
        """Remove objects no repo links to any more (link count 1). Returns how many."""
        removed = 0
        now = time.time()
        for path in (self.root / "objects").glob("*/*/*"):
            st = path.stat()
            if st.st_nlink == 1 and now - st.st_mtime > keep_younger_than_s:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _check(oid: str, size: int, got_size: int, sha256: str) -> None:
    if got_size != size:
        raise BadRequest(f"upload for {oid} has {got_size} bytes, expected {size}")
    if sha256 != oid:
        raise BadRequest(f"upload does not hash to its oid: sha256 is {sha256}, expected {oid}")


class TicketSigner:
    """Opaque upload URLs: ``base64(json).hmac``; the HMAC key never leaves the server root."""

    def __init__(self, secret: bytes, ttl_s: float = 6 * 3600) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def sign(self, claims: dict[str, Any]) -> str:
        body = dict(claims, exp=int(time.time() + self.ttl_s), nonce=uuid.uuid4().hex)
        payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:40]
        return f"{payload}.{mac}"

    def derive(self, label: str) -> str:
        """A stable secret-derived id for ``label`` (one per server root)."""
        return hmac.new(self._secret, label.encode(), hashlib.sha256).hexdigest()

    def verify(self, ticket: str) -> dict[str, Any] | None:
        payload, _, mac = ticket.partition(".")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:40]
        if not mac or not hmac.compare_digest(mac, expected):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
            return None
        return claims
