"""Writing: preupload, the LFS batch API and its transfers (basic, multipart, verify), the NDJSON commit."""

from __future__ import annotations

import base64
import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from publisher.hub.ids import InvalidName, check_path_in_repo
from publisher.hub.server import lfs_batch, schemas
from publisher.hub.server.errors import BadRequest, NotFound, RepoNotFound, RevisionNotFound
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.lfs import OID_RE
from publisher.hub.server.multipart import Assembler
from publisher.hub.server.storage import (
    AddFile,
    AddLfs,
    DeleteFile,
    DeleteFolder,
    Operation,
    Repo,
    RepoKey,
    Snapshot,
)

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
LFS_SIZE = 10 << 20  # the Hub requires LFS from 10 MB on


def lfs_patterns(repo: Repo, snap: Snapshot) -> list[str]:
    entry = snap.files.get(".gitattributes")
    if entry is None or entry.lfs:
        return []
    patterns = []
    for line in repo.read_blob(entry.blob_id).decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def matches_gitattributes(pattern: str, path: str) -> bool:
    """gitattributes semantics: a pattern without '/' matches the file name at any depth."""
    if "/" not in pattern:
        return fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    return _glob_regex(pattern.lstrip("/")).match(path) is not None


def register(app: HubApp, router: Router) -> None:
    parts = Assembler(app.store.tmp / "parts")

    def key_of(req: Request, default_type: str = "model") -> RepoKey:
        rtype = TYPES.get(req.params["rtype"]) if "rtype" in req.params else default_type
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{req.params['name']}")
        return app.key(rtype, req.params["ns"], req.params["name"])

    # ---------------------------------------------------------------- preupload
    def preupload(req: Request) -> Response:
        repo, _ = app.write_repo(req, key_of(req))
        snap = repo.snapshot(repo.resolve(req.params["rev"]))
        body = schemas.parse(req, schemas.Preupload)
        patterns = lfs_patterns(repo, snap)
        ignored = gitignore_patterns(repo, snap, body.gitIgnore)
        out = []
        for f in body.files:
            path = _checked_path(f.path)
            try:
                sample = base64.b64decode(f.sample, validate=True)
            except ValueError as e:
                raise BadRequest(f"sample of {path} is not base64") from e
            lfs = f.size >= LFS_SIZE or b"\0" in sample or any(matches_gitattributes(p, path) for p in patterns)
            remote = snap.files.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": is_ignored(ignored, path),
                    "oid": remote.etag if remote else None,
                }
            )
        return Response.json({"files": out, "commitOid": snap.commit.id})

    # ---------------------------------------------------------------- LFS batch
    def batch(req: Request) -> Response:
        key = key_of(req)
        body = schemas.parse(req, schemas.LfsBatch)
        if body.operation == "download":  # git lfs pull
            return lfs_batch.download(app, req, key, body.model_dump(exclude_none=True))
        repo, _ = app.write_repo(req, key)
        base = app.base_url(req)
        s = app.settings
        out: list[dict[str, Any]] = []
        for obj in body.objects:
            oid, size = obj.oid, obj.size
            if not OID_RE.fullmatch(oid):
                out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "invalid oid"}})
                continue
            linked = repo.lfs.linked_size(repo.path, oid)
            if linked == size:
                out.append({"oid": oid, "size": size})  # already here: nothing to send
                continue
            parts = -(-size // s.chunk_size) if size > s.multipart_threshold else 0
            ticket = app.signer.sign(
                {"r": [key.repo_type, key.namespace, key.name], "o": oid, "s": size, "p": parts, "c": s.chunk_size}
            )
            href = f"{base}/lfs-upload/{ticket}"
            header: dict[str, str] = {}
            if parts:
                header["chunk_size"] = str(s.chunk_size)
                for n in range(1, parts + 1):
                    header[f"{n:05d}"] = f"{href}/{n}"
            verify = f"{base}/{key.url_prefix}{key.repo_id}.git/info/lfs/objects/verify"
            out.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {"upload": {"href": href, "header": header}, "verify": {"href": verify, "header": {}}},
                }
            )
        return Response.json({"transfer": "basic", "objects": out}, headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _ticket(req: Request) -> tuple[dict[str, Any], Repo]:
        claims = app.signer.verify(req.params["ticket"])
        if claims is None:
            raise BadRequest("invalid or expired upload URL; ask the batch API again", status=403)
        rtype, ns, name = claims["r"]
        repo = app.store.get(RepoKey(rtype, ns, name))
        if repo is None:
            raise RepoNotFound(f"{ns}/{name}")
        return claims, repo

    def upload_basic(req: Request) -> Response:
        claims, repo = _ticket(req)
        if claims["p"]:
            raise BadRequest("this object is uploaded in parts")
        if req.body.length is not None and req.body.length != claims["s"]:
            raise BadRequest(f"Content-Length {req.body.length} does not match the object size {claims['s']}")
        repo.lfs.store(repo.path, claims["o"], claims["s"], req.body.iter())
        return Response.json({})

    def upload_part(req: Request) -> Response:
        claims, _ = _ticket(req)
        n = req.params["part"]
        if not n.isdigit() or not 1 <= int(n) <= claims["p"]:
            raise NotFound(f"no part {n}")
        expected = min(claims["c"], claims["s"] - (int(n) - 1) * claims["c"])
        if req.body.length is not None and req.body.length != expected:
            raise BadRequest(f"part {n} has {req.body.length} bytes, expected {expected}")
        data = bytearray(expected)
        got = req.body.read_into(data)
        if got != expected or req.body.read(1):
            raise BadRequest(f"part {n} has {'more than ' if got == expected else ''}{got} bytes, expected {expected}")
        parts.write_part(claims["nonce"], int(n), (int(n) - 1) * claims["c"], data)
        # the client only echoes the ETag back at completion (S3 sends an MD5; hashing again buys nothing)
        return Response(200, {"ETag": f'"{claims["nonce"]}-{int(n)}"'})

    def upload_complete(req: Request) -> Response:
        claims, repo = _ticket(req)
        if not claims["p"]:
            raise BadRequest("this object is not uploaded in parts")
        body = schemas.parse(req, schemas.MultipartComplete)
        if body.oid != claims["o"] or sorted(p.partNumber for p in body.parts) != list(range(1, claims["p"] + 1)):
            raise BadRequest(f"completion must name the object {claims['o']} and list all {claims['p']} parts")
        missing = parts.missing(claims["nonce"], claims["p"])
        if missing:
            raise BadRequest(f"parts not uploaded: {', '.join(map(str, missing))}")
        try:
            path, digest = parts.assembled(claims["nonce"], claims["p"])
            repo.lfs.adopt(repo.path, claims["o"], claims["s"], path, digest)
        finally:
            parts.discard(claims["nonce"])
        app.faults.point("lfs.after-complete", repo=f"{claims['r'][1]}/{claims['r'][2]}")  # stored, not yet answered
        return Response.json({})

    def verify(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        body = schemas.parse(req, schemas.LfsVerify)
        oid = body.oid
        if not OID_RE.fullmatch(oid):
            raise BadRequest(f"invalid oid {oid!r}: expected 64 lowercase hex characters")
        size = repo.lfs.linked_size(repo.path, oid)
        if size is None or (body.size is not None and body.size != size):
            raise NotFound(f"object {oid} was not uploaded (or has another size)")
        return Response.json({"oid": oid, "size": size})

    # ---------------------------------------------------------------- commit
    def commit(req: Request) -> Response:
        key = key_of(req)
        repo, who = app.write_repo(req, key)
        branch = req.params["rev"]
        if repo.branch_head(branch) is None:
            raise RevisionNotFound(branch)
        header, ops = read_commit_lines(req)
        base = f"{app.base_url(req)}/{key.url_prefix}{key.repo_id}"
        if req.flag("create_pr"):
            oid, num = repo.open_pull_request(
                branch, ops, title=header.summary, description=header.description or "",
                parent=header.parentCommit, author=who.user,
            )
            return Response.json({"success": True, "commitOid": oid, "commitUrl": f"{base}/commit/{oid}",
                                  "pullRequestUrl": f"{base}/discussions/{num}"})
        oid = repo.commit(
            branch,
            ops,
            summary=header.summary,
            description=header.description or "",
            parent=header.parentCommit,
            author=who.user,
        )
        return Response.json({"success": True, "commitOid": oid, "commitUrl": f"{base}/commit/{oid}",
                              "pullRequestUrl": None})

    api = "/api/{rtype}/{ns}/{name}"
    router.add("POST", f"{api}/preupload/{{rev}}", preupload)
    router.add("POST", f"{api}/commit/{{rev}}", commit)
    router.add("PUT", "/lfs-upload/{ticket}", upload_basic)
    router.add("POST", "/lfs-upload/{ticket}", upload_complete)
    router.add("PUT", "/lfs-upload/{ticket}/{part}", upload_part)
    for prefix in ("", "/{rtype}"):
        router.add("POST", f"{prefix}/{{ns}}/{{name}}.git/info/lfs/objects/batch", batch)
        router.add("POST", f"{prefix}/{{ns}}/{{name}}.git/info/lfs/objects/verify", verify)


def read_commit_lines(req: Request) -> tuple[schemas.CommitHeader, list[Operation]]:
    """Every NDJSON line validated before anything is stored: a bad line commits nothing."""
    header: schemas.CommitHeader | None = None
    ops: list[Operation] = []
    for number, raw in enumerate(req.body.iter_lines(), start=1):
        if not raw.strip():
            continue
        line = schemas.commit_line(raw, number)
        if isinstance(line, schemas.HeaderLine):
            if header is not None:
                raise BadRequest(f"commit line {number}: a second header")
            header = line.value
        elif isinstance(line, schemas.FileLine):
            try:
                content = base64.b64decode(line.value.content, validate=True)
            except ValueError as e:
                raise BadRequest(f"commit line {number}: file {line.value.path!r}: content is not base64") from e
            ops.append(AddFile(_checked_path(line.value.path), content))
        elif isinstance(line, schemas.LfsFileLine):
            if not OID_RE.fullmatch(line.value.oid):
                raise BadRequest(f"commit line {number}: lfsFile {line.value.path!r}: invalid oid")
            ops.append(AddLfs(_checked_path(line.value.path), line.value.oid, line.value.size))
        elif isinstance(line, schemas.DeletedFileLine):
            ops.append(DeleteFile(_checked_path(line.value.path)))
        else:
            _checked_path(line.value.path.rstrip("/"))
            ops.append(DeleteFolder(line.value.path))
    if header is None or not header.summary.strip():
        raise BadRequest("commit header with a non-empty summary is required")
    parent = header.parentCommit
    if parent is not None and not re.fullmatch(r"[0-9a-fA-F]{5,40}", parent):
        raise BadRequest("parentCommit must be a commit id")
    return header, ops


def gitignore_patterns(repo: Repo, snap: Snapshot, uploaded: str | None) -> list[str]:
    """The ``.gitignore`` being uploaded, else the repo's: patterns (no negations)."""
    text = uploaded
    if text is None:
        entry = snap.files.get(".gitignore")
        if entry is None or entry.lfs or entry.size > (1 << 20):
            return []
        text = repo.read_blob(entry.blob_id).decode("utf-8", "replace")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "!"))]


def is_ignored(patterns: list[str], path: str) -> bool:
    """gitignore's common cases: ``*.log``, ``build/`` (a folder at any depth), ``/top.txt``."""
    if path == ".gitignore":
        return False
    parts = path.split("/")
    for pattern in patterns:
        folder = pattern.endswith("/")
        pat = pattern.strip("/")
        anchored = pattern.startswith("/") or "/" in pat
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts) - (1 if folder else 0))]
        for cand in candidates:
            if anchored and _glob_regex(pat).match(cand):
                return True
            if not anchored and fnmatchcase(cand.rsplit("/", 1)[-1], pat):
                return True
    return False


def _checked_path(path: object) -> str:
    if not isinstance(path, str):
        raise BadRequest("path must be a string")
    try:
        return check_path_in_repo(path)
    except InvalidName as e:
        raise BadRequest(str(e)) from e
