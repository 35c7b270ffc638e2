"""File downloads: ``HEAD``/``GET /{prefix}{ns}/{name}/resolve/{rev}/{path}`` with the Hub's headers.

The client needs ``X-Repo-Commit`` and a content-unique ``ETag`` (sha256 for LFS files,
the git blob id otherwise), reads the size from ``Content-Length`` (or ``X-Linked-Size``),
and resumes with ``Range``. LFS files go out with ``sendfile`` straight from the object store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from publisher.hub.server.errors import ApiError, EntryNotFound, RepoNotFound
from publisher.hub.server.http import FileBody, Request, Response, Router

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

PREFIX_TYPES = {"datasets": "dataset", "spaces": "space"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` for one satisfiable range; None: serve the whole file."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None:
        return None  # several ranges or another unit: a full 200 is allowed
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:
        n = int(last)
        if n == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError("Requested Range Not Satisfiable", status=416, headers={"Content-Range": f"bytes */{size}"})


def register(app: HubApp, router: Router) -> None:
    def resolve(req: Request) -> Response:
        rtype = PREFIX_TYPES.get(req.params["rtype"]) if "rtype" in req.params else "model"
        if rtype is None:
            raise RepoNotFound(req.params["ns"] + "/" + req.params["name"])
        repo = app.read_repo(req, app.key(rtype, req.params["ns"], req.params["name"]))
        commit = repo.resolve(req.params["rev"])
        path = req.params["path"]
        entry = repo.snapshot(commit).files.get(path)
        if entry is None:
            raise EntryNotFound(path, commit)
        name = path.rsplit("/", 1)[-1]
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.lfs.oid}"'
            headers["X-Linked-Size"] = str(entry.lfs.size)
        size = entry.size
        if req.method == "HEAD":
            return Response(200, headers, content_length=size)
        span = parse_range(req.headers.get("Range"), size)
        start, end = span if span else (0, size - 1)
        status = 200
        if span:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if entry.lfs:
            return Response(status, headers, file=FileBody(repo.lfs.object_path(entry.lfs.oid), start, end - start + 1))
        data = repo.read_blob(entry.blob_id)
        return Response(status, headers, data[start : end + 1])

    router.add("GET", "/{ns}/{name}/resolve/{rev}/{path*}", resolve)
    router.add("GET", "/{rtype}/{ns}/{name}/resolve/{rev}/{path*}", resolve)
