"""Read and manage repos: whoami, create/delete/settings, info, tree, refs, commits, tags, branches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from publisher.hub.cardcheck import check_card
from publisher.hub.server import listing, schemas
from publisher.hub.server.errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    RepoNotFound,
    Unauthorized,
)
from publisher.hub.server.history import last_commit_item, last_commits
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.storage import Repo, RepoKey, Snapshot
from publisher.hub.server.views import commit_item, paginate, repo_info, tree_item

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
API = "/api/{rtype}/{ns}/{name}"


def register(app: HubApp, router: Router) -> None:
    info_cache: dict[str, Any] = {}

    def key_of(req: Request) -> RepoKey:
        rtype = TYPES.get(req.params["rtype"])
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{req.params['name']}")
        return app.key(rtype, req.params["ns"], req.params["name"])

    def snapshot_at(req: Request, revision: str) -> tuple[Any, Snapshot]:
        repo = app.read_repo(req, key_of(req))
        return repo, repo.snapshot(repo.resolve(revision))

    def repo_url(req: Request, key: RepoKey) -> str:
        return f"{app.base_url(req)}/{key.url_prefix}{key.repo_id}"

    # ---------------------------------------------------------------- account
    def whoami(req: Request) -> Response:
        who = app.identity(req)
        if who is None:
            raise Unauthorized("Invalid user token. You must send a token in the Authorization header")
        return Response.json(
            {
                "type": "user",
                "id": who.user,
                "name": who.user,
                "fullname": who.user,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "orgs": [{"type": "org", "name": o, "fullname": o, "roleInOrg": who.scope} for o in who.orgs],
                "auth": {"type": "access_token", "accessToken": {"displayName": who.token_name, "role": who.scope}},
            }
        )

    def harnesses(req: Request) -> Response:
        return Response.json({"standardEnvVars": [], "harnesses": {}})

    def validate_yaml(req: Request) -> Response:
        body = schemas.parse(req, schemas.ValidateYaml)
        result = check_card(body.content, body.repoType or "model")
        payload = {
            "errors": [{"message": m} for m in result.errors],
            "warnings": [{"message": m} for m in result.warnings],
        }
        return Response.json(payload, 400 if result.errors else 200)

    # ---------------------------------------------------------------- repos
    def _body_key(req: Request, body: schemas.CreateRepo | schemas.DeleteRepo) -> RepoKey:
        who = app.identity(req)
        ns = body.organization or (who.user if who else None)
        if ns is None:
            raise BadRequest("organization (or a token) is required")
        return app.key(body.type or "model", ns, body.name)

    def create_repo(req: Request) -> Response:
        body = schemas.parse(req, schemas.CreateRepo)
        who = app.identity(req)
        key = _body_key(req, body)
        if who is not None and who.repo == key and app.store.get(key) is not None:
            pass  # a token scoped to this repo (trusted publishing) hears 409 below, so exist_ok works
        else:
            app.check_write(who, key.namespace)
        assert who is not None
        if body.private is not None and body.visibility is not None:
            raise BadRequest("pass private or visibility, not both")
        private = body.visibility == "private" if body.visibility is not None else bool(body.private)
        url = repo_url(req, key)
        if app.store.get(key) is not None:
            return Response.json(
                {"error": "You already created this model repo", "url": url},
                409,
                {"X-Error-Message": "You already created this model repo"},
            )
        try:
            app.store.create(key, private=private, author=who.user)
        except Conflict as e:
            return Response.json({"error": e.message, "url": url}, 409, {"X-Error-Message": e.message})
        return Response.json({"url": url, "name": key.repo_id, "id": key.repo_id})

    def delete_repo(req: Request) -> Response:
        key = _body_key(req, schemas.parse(req, schemas.DeleteRepo))
        app.write_repo(req, key)
        app.store.delete(key)
        return Response.json({})

    def settings(req: Request) -> Response:
        key = key_of(req)
        repo, _ = app.write_repo(req, key)
        body = schemas.parse(req, schemas.RepoSettings)
        if body.private is not None and body.visibility is not None:
            raise BadRequest("pass private or visibility, not both")
        if body.private is None and body.visibility is None and body.gated is None:
            raise BadRequest("no setting to change: send private, visibility or gated")
        private = body.visibility == "private" if body.visibility is not None else body.private
        repo.update_settings(private=private, gated=body.gated)
        return Response.json({"private": repo.meta.private, "gated": repo.meta.gated})

    def list_repos(req: Request) -> Response:
        rtype = TYPES.get(req.params["rtype"])
        if rtype is None:
            raise RepoNotFound(req.params["rtype"])
        listing.check_params(req)
        who = app.identity(req)
        author, search = req.arg("author"), (req.arg("search") or "").lower()
        items = []
        for key in app.store.list_keys(rtype):
            if author and key.namespace.lower() != author.lower():
                continue
            if search and search not in key.repo_id.lower():
                continue
            repo = app.store.get(key)
            if repo is None or not app.can_read(who, repo):
                continue
            head = repo.branch_head("main")
            if head is None:
                continue
            info = repo_info(repo, repo.snapshot(head), files_metadata=False, cache=info_cache)
            if not listing.matches(info, req):
                continue
            if not req.flag("full"):
                info.pop("siblings", None)
            items.append(listing.Listed(info, created=repo.meta.created_at, modified=repo.modified_ns()))
        items_json = [item.info for item in listing.limited(listing.ordered(items, req), req)]
        page, headers = paginate(req, items_json, 1000, app.base_url(req))
        return Response.json(page, headers=headers)

    # ---------------------------------------------------------------- reading
    def info(req: Request) -> Response:
        repo, snap = snapshot_at(req, req.params.get("rev") or "main")
        if len(info_cache) > 4096:
            info_cache.clear()  # derived data per commit: cheap to rebuild, never stale
        return Response.json(repo_info(repo, snap, files_metadata=req.flag("blobs"), cache=info_cache))

    def expanded(repo: Repo, snap: Snapshot, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``expand=True``: each item's ``lastCommit`` (the newest commit that changed it)."""
        found = last_commits(repo, snap.commit.id, [item["path"] for item in items])
        for item in items:
            if item["path"] in found:
                item["lastCommit"] = last_commit_item(found[item["path"]])
        return items

    def tree(req: Request) -> Response:
        repo, snap = snapshot_at(req, req.params["rev"])
        path = req.params.get("path", "").strip("/")
        expand = req.flag("expand")
        if path and path not in snap.dirs:
            if path in snap.files:
                items = [tree_item(snap.files[path])]
                return Response.json(expanded(repo, snap, items) if expand else items)
            raise EntryNotFound(path, snap.commit.id)
        listing = [tree_item(e) for e in snap.listing(path, req.flag("recursive"))]
        # the Hub pages expanded listings by 50: each page walks history for its items only
        page_size = min(app.settings.page_size, 50) if expand else app.settings.page_size
        page, headers = paginate(req, listing, page_size, app.base_url(req))
        return Response.json(expanded(repo, snap, page) if expand else page, headers=headers)

    def paths_info(req: Request) -> Response:
        repo, snap = snapshot_at(req, req.params["rev"])
        form = parse_qs(req.body.read_all().decode("utf-8", "replace"))
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in snap.files:
                out.append(tree_item(snap.files[path]))
            elif path in snap.dirs:
                out.append(tree_item((path, snap.dirs[path])))
        expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
        return Response.json(expanded(repo, snap, out) if expand else out)

    def refs(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        kinds: dict[str, list[dict[str, str]]] = {"heads": [], "tags": [], "pr": []}
        for full, target in sorted(repo.refs().items()):
            kind, _, name = full[len("refs/") :].partition("/")
            kinds[kind].append({"name": full if kind == "pr" else name, "ref": full, "targetCommit": target})
        kinds["pr"].sort(key=lambda item: int(item["ref"].rsplit("/", 1)[1]))
        out: dict[str, Any] = {"branches": kinds["heads"], "converts": [], "tags": kinds["tags"]}
        if req.flag("include_prs"):
            out["pullRequests"] = kinds["pr"]
        return Response.json(out)

    def commits(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        head = repo.resolve(req.params["rev"])
        formatted = "formatted" in req.query.get("expand[]", []) + req.query.get("expand", [])
        items = [commit_item(c, formatted) for c in repo.history(head)]
        page, headers = paginate(req, items, app.settings.commits_page_size, app.base_url(req))
        return Response.json(page, headers=headers)

    # ---------------------------------------------------------------- refs
    def create_tag(req: Request) -> Response:
        repo, who = app.write_repo(req, key_of(req))
        body = schemas.parse(req, schemas.CreateTag)
        target = repo.create_tag(body.tag, req.params["rev"], body.message, who.user)
        return Response.json({"tag": body.tag, "targetCommit": target})

    def delete_tag(req: Request) -> Response:
        repo, _ = app.write_repo(req, key_of(req))
        repo.delete_ref("tags", req.params["tag"])
        return Response.json({})

    def create_branch(req: Request) -> Response:
        repo, _ = app.write_repo(req, key_of(req))
        body = schemas.parse(req, schemas.CreateBranch, empty_ok=True)
        target = repo.create_branch(req.params["branch"], body.startingPoint)
        return Response.json({"branch": req.params["branch"], "targetCommit": target})

    def delete_branch(req: Request) -> Response:
        repo, _ = app.write_repo(req, key_of(req))
        repo.delete_ref("heads", req.params["branch"])
        return Response.json({})

    router.add("GET", "/api/whoami-v2", whoami)
    router.add("GET", "/api/agent-harnesses", harnesses)
    router.add("POST", "/api/validate-yaml", validate_yaml)
    router.add("POST", "/api/repos/create", create_repo)
    router.add("DELETE", "/api/repos/delete", delete_repo)
    router.add("GET", "/api/{rtype}", list_repos)
    router.add("GET", API, info)
    router.add("GET", f"{API}/revision/{{rev}}", info)
    router.add("PUT", f"{API}/settings", settings)
    router.add("GET", f"{API}/tree/{{rev}}/{{path*}}", tree)
    router.add("POST", f"{API}/paths-info/{{rev}}", paths_info)
    router.add("GET", f"{API}/refs", refs)
    router.add("GET", f"{API}/commits/{{rev}}", commits)
    router.add("POST", f"{API}/tag/{{rev}}", create_tag)
    router.add("DELETE", f"{API}/tag/{{tag}}", delete_tag)
    router.add("POST", f"{API}/branch/{{branch}}", create_branch)
    router.add("DELETE", f"{API}/branch/{{branch}}", delete_branch)
