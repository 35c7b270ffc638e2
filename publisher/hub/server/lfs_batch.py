"""LFS batch downloads (``git lfs pull``/``fetch``): signed, expiring URLs to the repo's objects.

The batch endpoint (``…/{name}.git/info/lfs/objects/batch``) is shared with uploads
(``routes_upload``); a ``download`` batch lands here. Reading needs what reading the repo
needs (public, or a token with access, sent by git-lfs as the Basic password), and only
objects linked into this repo are offered, so a sha256 alone reads nothing. The download
URLs carry their own signature (git-lfs sends no token to them) from a key derived for
downloads only, so no other ticket the server issues is accepted there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from publisher.hub.server.errors import BadRequest, NotFound
from publisher.hub.server.http import FileBody, Request, Response, Router
from publisher.hub.server.lfs import OID_RE, TicketSigner
from publisher.hub.server.storage import RepoKey

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

LFS_JSON = "application/vnd.git-lfs+json"
TICKET_TTL_S = 3600


def _signer(app: HubApp) -> TicketSigner:
    return TicketSigner(app.signer.derive("lfs-download").encode(), ttl_s=TICKET_TTL_S)


def download(app: HubApp, req: Request, key: RepoKey, body: dict[str, Any]) -> Response:
    """The answer to ``{"operation": "download", "objects": [{oid, size}]}``."""
    repo = app.read_repo(req, key)
    transfers = body.get("transfers")
    if transfers is not None and (not isinstance(transfers, list) or "basic" not in transfers):
        raise BadRequest("the local Hub offers the basic LFS transfer only")
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise BadRequest("a batch needs objects: [{oid, size}]")
    signer = _signer(app)
    base = app.base_url(req)
    out: list[dict[str, Any]] = []
    for obj in objects:
        oid = obj.get("oid") if isinstance(obj, dict) else None
        if not isinstance(oid, str) or not OID_RE.match(oid):
            out.append({"oid": str(oid), "size": 0, "error": {"code": 422, "message": "invalid oid"}})
            continue
        size = repo.lfs.linked_size(repo.path, oid)
        if size is None:
            out.append({"oid": oid, "size": obj.get("size") or 0, "error": {"code": 404, "message": "Object does not exist"}})
            continue
        ticket = signer.sign({"d": oid, "r": [key.repo_type, key.namespace, key.name]})
        out.append(
            {
                "oid": oid,
                "size": size,
                "authenticated": True,
                "actions": {"download": {"href": f"{base}/lfs-download/{ticket}", "expires_in": TICKET_TTL_S}},
            }
        )
    return Response.json({"transfer": "basic", "objects": out}, headers={"Content-Type": LFS_JSON})


def register(app: HubApp, router: Router) -> None:
    signer = _signer(app)

    def get_object(req: Request) -> Response:
        claims = signer.verify(req.params["ticket"])
        if claims is None:
            raise BadRequest("invalid or expired download URL; ask the batch API again", status=403)
        rtype, ns, name = claims["r"]
        repo = app.store.get(RepoKey(rtype, ns, name))
        oid = str(claims["d"])
        size = repo.lfs.linked_size(repo.path, oid) if repo is not None else None
        if repo is None or size is None:
            raise NotFound(f"object {oid} is no longer in {ns}/{name}")
        headers = {"Content-Type": "application/octet-stream"}
        return Response(200, headers, file=FileBody(repo.lfs.linked_path(repo.path, oid), 0, size), content_length=size)

    router.add("GET", "/lfs-download/{ticket}", get_object)
