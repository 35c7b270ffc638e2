"""Writing: preupload, the LFS batch API and its transfers (basic, multipart, verify), the NDJSON commit."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.hub.ids import InvalidName, check_path_in_repo
from publisher.hub.server import lfs_batch
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.errors import BadRequest, NotFound, RepoNotFound, RevisionNotFound
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.lfs import OID_RE
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
    parts_root = app.store.tmp / "parts"

    def key_of(req: Request, default_type: str = "model") -> RepoKey:
        rtype = TYPES.get(req.params["rtype"]) if "rtype" in req.params else default_type
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{req.params['name']}")
        return app.key(rtype, req.params["ns"], req.params["name"])

    # ---------------------------------------------------------------- preupload
    def preupload(req: Request) -> Response:
        repo, _ = app.write_repo(req, key_of(req))
        snap = repo.snapshot(repo.resolve(req.params["rev"]))
        body = req.json()
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list):
            raise BadRequest("body must be {files: [{path, sample, size}]}")
        patterns = lfs_patterns(repo, snap)
        out = []
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("path"), str):
                raise BadRequest("each file needs a path")
            path = _checked_path(f["path"])
            size = f.get("size")
            try:
                sample = base64.b64decode(f.get("sample") or "")
            except ValueError as e:
                raise BadRequest(f"sample of {path} is not base64") from e
            lfs = (
                (isinstance(size, int) and size >= LFS_SIZE)
                or b"\0" in sample
                or any(matches_gitattributes(p, path) for p in patterns)
            )
            remote = snap.files.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": remote.etag if remote else None,
                }
            )
        return Response.json({"files": out, "commitOid": snap.commit.id})

    # ---------------------------------------------------------------- LFS batch
    def batch(req: Request) -> Response:
        key = key_of(req)
        body = req.json()
        if isinstance(body, dict) and body.get("operation") == "download":
            return lfs_batch.download(app, req, key, body)  # git lfs pull
        repo, _ = app.write_repo(req, key)
        if not isinstance(body, dict) or body.get("operation") != "upload" or not isinstance(body.get("objects"), list):
            raise BadRequest("only {operation: upload, objects: [...]} batches are supported")
        base = app.base_url(req)
        s = app.settings
        out: list[dict[str, Any]] = []
        for obj in body["objects"]:
            oid, size = (obj.get("oid"), obj.get("size")) if isinstance(obj, dict) else (None, None)
            if not isinstance(oid, str) or not OID_RE.match(oid) or not isinstance(size, int) or size < 0:
                out.append({"oid": str(oid), "size": 0, "error": {"code": 422, "message": "invalid oid or size"}})
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

    def _part_dir(claims: dict[str, Any]) -> Path:
        return parts_root / re.sub(r"[^0-9a-f]", "", str(claims["nonce"]))

    def upload_part(req: Request) -> Response:
        claims, _ = _ticket(req)
        n = req.params["part"]
        if not n.isdigit() or not 1 <= int(n) <= claims["p"]:
            raise NotFound(f"no part {n}")
        data = req.body.read_all(limit=claims["c"] + 1)
        expected = min(claims["c"], claims["s"] - (int(n) - 1) * claims["c"])
        if len(data) != expected:
            raise BadRequest(f"part {n} has {len(data)} bytes, expected {expected}")
        folder = _part_dir(claims)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{int(n):05d}", data, fsync=False)
        return Response(200, {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    def upload_complete(req: Request) -> Response:
        claims, repo = _ticket(req)
        if not claims["p"]:
            raise BadRequest("this object is not uploaded in parts")
        body = req.json()
        listed = body.get("parts") if isinstance(body, dict) else None
        if not isinstance(listed, list) or len(listed) != claims["p"]:
            raise BadRequest(f"completion must list all {claims['p']} parts")
        folder = _part_dir(claims)
        files = [folder / f"{n:05d}" for n in range(1, claims["p"] + 1)]
        missing = [str(i + 1) for i, f in enumerate(files) if not f.is_file()]
        if missing:
            raise BadRequest(f"parts not uploaded: {', '.join(missing)}")

        def chunks() -> Iterator[bytes]:
            for f in files:
                yield f.read_bytes()

        try:
            repo.lfs.store(repo.path, claims["o"], claims["s"], chunks())
        finally:
            for f in files:
                f.unlink(missing_ok=True)
            folder.rmdir() if folder.is_dir() and not any(folder.iterdir()) else None
        return Response.json({})

    def verify(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        body = req.json()
        oid = body.get("oid") if isinstance(body, dict) else None
        if not isinstance(oid, str) or not OID_RE.match(oid):
            raise BadRequest("verify needs {oid, size}")
        size = repo.lfs.linked_size(repo.path, oid)
        if size is None or (isinstance(body.get("size"), int) and body["size"] != size):
            raise NotFound(f"object {oid} was not uploaded (or has another size)")
        return Response.json({"oid": oid, "size": size})

    # ---------------------------------------------------------------- commit
    def commit(req: Request) -> Response:
        key = key_of(req)
        repo, who = app.write_repo(req, key)
        if req.flag("create_pr"):
            raise BadRequest("pull requests are not supported by the local Hub")
        branch = req.params["rev"]
        if repo.branch_head(branch) is None:
            raise RevisionNotFound(branch)
        header: dict[str, Any] | None = None
        ops: list[Operation] = []
        for line in req.body.iter_lines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                kind, value = item["key"], item["value"]
            except (ValueError, KeyError, TypeError) as e:
                raise BadRequest("commit body must be NDJSON lines of {key, value}") from e
            if kind == "header":
                header = value
            elif kind == "file":
                if value.get("encoding", "base64") != "base64":
                    raise BadRequest("only base64 file content is supported")
                try:
                    content = base64.b64decode(value["content"], validate=True)
                except (ValueError, KeyError) as e:
                    raise BadRequest(f"file {value.get('path')!r}: content is not base64") from e
                ops.append(AddFile(_checked_path(value.get("path")), content))
            elif kind == "lfsFile":
                oid = value.get("oid")
                if not isinstance(oid, str) or not OID_RE.match(oid):
                    raise BadRequest(f"lfsFile {value.get('path')!r}: invalid oid")
                size = value.get("size")
                ops.append(AddLfs(_checked_path(value.get("path")), oid, size if isinstance(size, int) else None))
            elif kind == "deletedFile":
                ops.append(DeleteFile(_checked_path(value.get("path"))))
            elif kind == "deletedFolder":
                path = value.get("path")
                _checked_path(path.rstrip("/") if isinstance(path, str) else path)
                ops.append(DeleteFolder(path))
            else:
                raise BadRequest(f"unknown commit line {kind!r}")
        if not header or not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise BadRequest("commit header with a non-empty summary is required")
        parent = header.get("parentCommit")
        if parent is not None and (not isinstance(parent, str) or not re.fullmatch(r"[0-9a-fA-F]{5,40}", parent)):
            raise BadRequest("parentCommit must be a commit id")
        oid = repo.commit(
            branch,
            ops,
            summary=header["summary"],
            description=str(header.get("description") or ""),
            parent=parent,
            author=who.user,
        )
        url = f"{app.base_url(req)}/{key.url_prefix}{key.repo_id}/commit/{oid}"
        return Response.json({"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": None})

    api = "/api/{rtype}/{ns}/{name}"
    router.add("POST", f"{api}/preupload/{{rev}}", preupload)
    router.add("POST", f"{api}/commit/{{rev}}", commit)
    router.add("PUT", "/lfs-upload/{ticket}", upload_basic)
    router.add("POST", "/lfs-upload/{ticket}", upload_complete)
    router.add("PUT", "/lfs-upload/{ticket}/{part}", upload_part)
    for prefix in ("", "/{rtype}"):
        router.add("POST", f"{prefix}/{{ns}}/{{name}}.git/info/lfs/objects/batch", batch)
        router.add("POST", f"{prefix}/{{ns}}/{{name}}.git/info/lfs/objects/verify", verify)


def _checked_path(path: object) -> str:
    if not isinstance(path, str):
        raise BadRequest("path must be a string")
    try:
        return check_path_in_repo(path)
    except InvalidName as e:
        raise BadRequest(str(e)) from e
