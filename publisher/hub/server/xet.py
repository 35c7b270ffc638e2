"""Xet uploads: the token routes and the part of the Xet CAS API that hf_xet uploads with.

huggingface_hub 2.4.0 with hf_xet installed (the default) uploads large files only through
Xet: it asks ``/api/{type}s/{id}/xet-write-token/{rev}`` for a CAS URL and a short-lived
token, hf_xet POSTs xorbs (``/v1/xorbs/default/{hash}``) and one shard listing each file
as xorb segments (``/v1/shards``; ``/v2/shards`` answers 404, which makes it use v1), then
the client commits the files as ``lfsFile`` lines by sha256. So the server verifies every
xorb against its hash, and when the shard arrives rebuilds each file from its xorbs into
the LFS store, checked against the sha256 the shard names, and links it into the token's
repo: the commit then finds it exactly as after a classic LFS upload. Downloads stay plain
HTTP (resolve sends no ``X-Xet-Hash``, so the client never asks for a reconstruction).

Xorbs are kept (``ROOT/xet/xorbs``): hf_xet remembers uploaded chunks and later shards
reference earlier xorbs instead of sending them again. Referencing a xorb by hash needs its
chunk hashes, which the server never shows, so it proves the uploader had those bytes.
The CAS URL carries a per-root instance id: hf_xet keys its chunk cache by CAS URL, so a
fresh root on the same port is a new cache, never one full of xorbs this root lacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.hub.server.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    RepoNotFound,
    Unauthorized,
)
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.lfs import OID_RE, TicketSigner
from publisher.hub.server.storage import RepoKey
from publisher.hub.server.xet_format import (
    FileInfo,
    FormatError,
    iter_chunks,
    parse_shard_files,
    xorb_hash_of,
)

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp
    from publisher.hub.server.storage import Repo

CAS_PREFIX = "/xet-cas"
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
MAX_XORB = 128 << 20  # hf_xet makes xorbs of at most 64 MiB
MAX_SHARD = 256 << 20
HASH_LEN = 64
CAS_TOKEN_TTL_S = 3600


class XorbStore:
    """Verified xorbs by hash: ``ROOT/xet/xorbs/aa/HASH``, published with one ``os.link``."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        root.mkdir(parents=True, exist_ok=True)

    def path(self, xorb: str) -> Path:
        if len(xorb) != HASH_LEN or not OID_RE.match(xorb):
            raise BadRequest(f"invalid xorb hash {xorb!r}: expected 64 lowercase hex characters")
        return self.root / xorb[:2] / xorb

    def has(self, xorb: str) -> bool:
        return self.path(xorb).is_file()

    def put(self, xorb: str, body: Iterator[bytes]) -> bool:
        """Store the xorb streamed in ``body`` if it hashes to ``xorb``; False: already stored."""
        target = self.path(xorb)
        tmp = self.tmp / f"xorb-{uuid.uuid4().hex}"
        try:
            total = 0
            with open(tmp, "w+b") as f:
                for data in body:
                    total += len(data)
                    if total > MAX_XORB:
                        raise ApiError(f"xorb over {MAX_XORB} bytes", status=413)
                    f.write(data)
                try:
                    actual, _ = xorb_hash_of(f)
                except FormatError as e:
                    raise BadRequest(f"xorb {xorb}: {e}") from e
                if actual != xorb:
                    raise BadRequest(f"xorb does not hash to its name: {actual}, expected {xorb}")
                f.flush()
                os.fsync(f.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def segment(self, info: FileInfo) -> Iterator[bytes]:
        """The bytes of a file, segment by segment, chunk by chunk, checked against the shard."""
        for seg in info.segments:
            path = self.path(seg.xorb)
            if not path.is_file():
                raise BadRequest(
                    f"shard names xorb {seg.xorb}, which this server does not have (upload it first; "
                    "if the client's Xet cache is from another server, clear HF_XET_CACHE)"
                )
            produced = 0
            with open(path, "rb") as f:
                index = seg.start
                for header, data in iter_chunks(f, skip=seg.start):
                    if index >= seg.end:
                        break
                    produced += header.length
                    index += 1
                    yield data
            if index != seg.end or produced != seg.length:
                raise BadRequest(f"shard segment of xorb {seg.xorb} (chunks {seg.start}-{seg.end}) does not match it")


def register(app: HubApp, router: Router) -> None:
    store = XorbStore(app.root / "xet" / "xorbs", app.store.tmp)
    instance = app.signer.derive("xet-cas-instance")[:16]
    # CAS tokens open nothing else, and live an hour as the Hub's do (hf_xet asks again)
    signer = TicketSigner(app.signer.derive("xet-cas-token").encode(), ttl_s=CAS_TOKEN_TTL_S)

    # ---------------------------------------------------------------- tokens (Hub API)
    def write_token(req: Request) -> Response:
        rtype = TYPES.get(req.params["rtype"])
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{req.params['name']}")
        key = app.key(rtype, req.params["ns"], req.params["name"])
        _, who = app.write_repo(req, key)
        ticket = signer.sign({"x": "cas-write", "r": [key.repo_type, key.namespace, key.name], "u": who.user})
        claims = signer.verify(ticket)
        assert claims is not None
        cas_url = f"{app.base_url(req)}{CAS_PREFIX}/{instance}"
        exp = int(claims["exp"])
        headers = {"X-Xet-Cas-Url": cas_url, "X-Xet-Access-Token": ticket, "X-Xet-Token-Expiration": str(exp)}
        return Response.json({"casUrl": cas_url, "exp": exp, "accessToken": ticket}, headers=headers)

    def read_token(req: Request) -> Response:
        raise NotFound(
            "the local Hub serves no Xet downloads: files download over plain HTTP "
            "(resolve answers without X-Xet-Hash)"
        )

    # ---------------------------------------------------------------- CAS
    def cas_repo(req: Request) -> Repo:
        if req.params["inst"] != instance:
            raise NotFound("this CAS URL belongs to another local Hub root; ask xet-write-token again")
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        claims = signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None or claims.get("x") != "cas-write":
            raise Unauthorized("missing, invalid or expired Xet token; ask xet-write-token again")
        rtype, ns, name = claims["r"]
        repo = app.store.get(RepoKey(rtype, ns, name))
        if repo is None:
            raise Forbidden(f"the repo {ns}/{name} of this Xet token no longer exists")
        return repo

    def post_xorb(req: Request) -> Response:
        cas_repo(req)
        if req.params["prefix"] != "default":
            raise BadRequest("the only xorb prefix is 'default'")
        xorb = req.params["hash"]
        if store.has(xorb):
            return Response.json({"was_inserted": False})
        return Response.json({"was_inserted": store.put(xorb, req.body.iter())})

    def head_xorb(req: Request) -> Response:
        cas_repo(req)
        if not store.has(req.params["hash"]):
            raise NotFound(f"xorb {req.params['hash']} not found")
        return Response(200)

    def post_shard(req: Request) -> Response:
        repo = cas_repo(req)
        data = req.body.read_all(limit=MAX_SHARD)
        try:
            files = parse_shard_files(data)
        except FormatError as e:
            raise BadRequest(f"shard: {e}") from e
        for info in files:
            _install_file(repo, info)
        return Response.json({"result": 1})

    def _install_file(repo: Repo, info: FileInfo) -> None:
        """Rebuild one file of a shard into the LFS store (checked by sha256) and link it into ``repo``."""
        oid = info.sha256_hex
        if oid is not None:
            if repo.lfs.linked_size(repo.path, oid) != info.size:
                repo.lfs.store(repo.path, oid, info.size, store.segment(info))
            return
        # no sha256 in the shard: rebuild to a temp file, then store it under the sha256 it has
        digest = hashlib.sha256()
        tmp = app.store.tmp / f"xet-file-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as f:
                for data in store.segment(info):
                    digest.update(data)
                    f.write(data)
            with open(tmp, "rb") as rebuilt:
                repo.lfs.store(repo.path, digest.hexdigest(), info.size, iter(lambda: rebuilt.read(1 << 20), b""))
        finally:
            tmp.unlink(missing_ok=True)

    def no_dedup(req: Request) -> Response:
        raise NotFound("no global deduplication on the local Hub")

    def telemetry(req: Request) -> Response:
        with contextlib.suppress(ApiError):
            req.body.read_all(limit=1 << 20)
        return Response.json({})

    api = "/api/{rtype}/{ns}/{name}"
    router.add("GET", f"{api}/xet-write-token/{{rev}}", write_token)
    router.add("GET", f"{api}/xet-read-token/{{rev}}", read_token)
    cas = f"{CAS_PREFIX}/{{inst}}"
    router.add("POST", f"{cas}/v1/xorbs/{{prefix}}/{{hash}}", post_xorb)
    router.add("HEAD", f"{cas}/v1/xorbs/{{prefix}}/{{hash}}", head_xorb)
    router.add("POST", f"{cas}/v1/shards", post_shard)
    router.add("GET", f"{cas}/v1/chunks/{{prefix}}/{{hash}}", no_dedup)
    router.add("POST", f"{cas}/v1/telemetry", telemetry)

