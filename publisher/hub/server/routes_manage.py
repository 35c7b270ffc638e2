"""Managing repos: move, duplicate, super-squash, the account's repo list, pull requests.

Pull requests are ``refs/pr/N`` refs with a record (``discussions``): opened by
``create_commit(create_pr=True)`` or ``create_pull_request``, listed by
``list_repo_refs(include_pull_requests=True)`` and ``get_repo_discussions``. Comments,
status changes, merges and plain discussions are refused with a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from publisher.hub.ids import InvalidName, split_repo_id
from publisher.hub.server import schemas
from publisher.hub.server.errors import ApiError, BadRequest, NotFound, RepoNotFound, Unauthorized
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.objects import MAIN, RepoKey, iso
from publisher.hub.server.repo import Repo

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
API = "/api/{rtype}/{ns}/{name}"


class NotSupported(ApiError):
    """A Hub feature the local Hub does not have: a clear 400, never a 200 that did nothing."""

    status = 400

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not supported by the local Hub (see the README's local Hub section)")


def register(app: HubApp, router: Router) -> None:
    def key_of(req: Request) -> RepoKey:
        rtype = TYPES.get(req.params["rtype"])
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{req.params['name']}")
        return app.key(rtype, req.params["ns"], req.params["name"])

    def parse_id(repo_id: str, rtype: str) -> RepoKey:
        try:
            ns, name = split_repo_id(repo_id)
        except InvalidName as e:
            raise BadRequest(str(e)) from e
        assert ns is not None
        return app.key(rtype, ns, name)

    def url(key: RepoKey) -> str:
        return f"{app.public_url}/{key.url_prefix}{key.repo_id}"

    # ---------------------------------------------------------------- repos
    def move(req: Request) -> Response:
        body = schemas.parse(req, schemas.MoveRepo)
        rtype = body.type or "model"
        source, target = parse_id(body.fromRepo, rtype), parse_id(body.toRepo, rtype)
        app.write_repo(req, source)
        app.check_write(app.identity(req), target.namespace)
        if source == target:
            raise BadRequest("fromRepo and toRepo are the same repo")
        app.store.move(source, target)
        return Response.json({"url": url(target)})

    def duplicate(req: Request) -> Response:
        source = key_of(req)
        repo = app.read_repo(req, source)
        body = schemas.parse(req, schemas.DuplicateRepo)
        target = parse_id(body.repository, source.repo_type)
        who = app.check_write(app.identity(req), target.namespace)
        if body.private is not None and body.visibility is not None:
            raise BadRequest("pass private or visibility, not both")
        private = repo.meta.private if body.private is None and body.visibility is None else (
            body.visibility == "private" if body.visibility is not None else bool(body.private))
        app.store.duplicate(repo, target, private=private, author=who.user)
        return Response.json({"url": url(target), "filesCopyPending": False})

    def super_squash(req: Request) -> Response:
        repo, who = app.write_repo(req, key_of(req))
        body = schemas.parse(req, schemas.SuperSquash, empty_ok=True)
        branch = req.params["branch"]
        commit = repo.squash(branch, body.message or f"Super-squash branch '{branch}'", who.user)
        return Response.json({"commitOid": commit})

    def account_repos(req: Request) -> Response:
        """``hf repos ls`` (``list_user_repos``): every repo of the caller or of one of its orgs."""
        who = app.identity(req)
        if who is None:
            raise Unauthorized("You must be authenticated to list your repositories")
        namespace = req.params.get("org", who.user)
        if not who.owns(namespace):
            raise NotFound(f"organization {namespace!r} not found among yours")
        repos = [app.store.get(k) for k in app.store.list_keys() if k.namespace == namespace]
        items: list[dict[str, Any]] = []
        total = 0
        for repo in repos:
            if repo is None:
                continue
            head = repo.branch_head(MAIN)
            snap = repo.snapshot(head) if head else None
            size = sum(e.size for e in snap.files.values()) if snap else 0
            total += size
            items.append({
                "id": repo.key.repo_id,
                "type": repo.key.repo_type,
                "updatedAt": snap.commit.date if snap else iso(repo.meta.created_at),
                "visibility": "private" if repo.meta.private else "public",
                "storage": size,
            })
        for item in items:
            item["storagePercent"] = round(100.0 * int(item["storage"]) / total, 2) if total else 0.0
        return Response.json(sorted(items, key=lambda i: str(i["id"])))

    # ---------------------------------------------------------------- pull requests
    def discussions_list(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        if req.arg("type") == "discussion":
            items = []
        else:
            status = req.arg("status") or "all"
            author = req.arg("author")
            items = [p.item(repo.key.repo_id, repo.key.repo_type) for p in reversed(repo.pull_requests())
                     if status in ("all", p.status) and (author is None or author == p.author)]
        page = int(req.arg("p") or 0) if (req.arg("p") or "0").isdigit() else 0
        chunk = items[page * 50 : (page + 1) * 50]
        return Response.json({"discussions": chunk, "count": len(items), "start": page * 50, "numClosedDiscussions": 0})

    def find_pr(repo: Repo, num: str) -> int:
        if not num.isdigit() or not any(p.num == int(num) for p in repo.pull_requests()):
            raise NotFound(f"discussion #{num} not found")
        return int(num)

    def discussion_details(req: Request) -> Response:
        repo = app.read_repo(req, key_of(req))
        num = find_pr(repo, req.params["num"])
        pr = next(p for p in repo.pull_requests() if p.num == num)
        item = pr.item(repo.key.repo_id, repo.key.repo_type)
        item.update({
            "events": [],
            "changes": {"base": f"refs/heads/{pr.base}"},
            "filesWithConflicts": [],
            "diff": None,
        })
        return Response.json(item)

    def create_discussion(req: Request) -> Response:
        key = key_of(req)
        repo, who = app.write_repo(req, key)
        body = schemas.parse(req, schemas.CreateDiscussion)
        if not body.pullRequest:
            raise NotSupported("Opening a discussion (not a pull request)")
        if not body.title.strip():
            raise BadRequest("a pull request needs a title")
        _, num = repo.open_pull_request(MAIN, [], title=body.title, description=body.description or "",
                                        parent=None, author=who.user)
        return Response.json({"num": num, "url": f"{url(key)}/discussions/{num}", "pullRequest": True})

    def refuse(what: str) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            app.read_repo(req, key_of(req))
            raise NotSupported(what)

        return handler

    router.add("POST", "/api/repos/move", move)
    router.add("POST", f"{API}/duplicate", duplicate)
    router.add("POST", f"{API}/super-squash/{{branch}}", super_squash)
    router.add("GET", "/api/settings/repositories", account_repos)
    router.add("GET", "/api/organizations/{org}/settings/repositories", account_repos)
    router.add("GET", f"{API}/discussions", discussions_list)
    router.add("POST", f"{API}/discussions", create_discussion)
    router.add("GET", f"{API}/discussions/{{num}}", discussion_details)
    router.add("POST", f"{API}/discussions/{{num}}/comment", refuse("Commenting on a discussion"))
    router.add("POST", f"{API}/discussions/{{num}}/merge", refuse("Merging a pull request"))
    router.add("POST", f"{API}/discussions/{{num}}/status", refuse("Changing a discussion's status"))
    router.add("POST", f"{API}/discussions/{{num}}/title", refuse("Renaming a discussion"))
    router.add("POST", f"{API}/discussions/{{num}}/comment/{{comment}}/edit", refuse("Editing a comment"))
    router.add("POST", f"{API}/discussions/{{num}}/comment/{{comment}}/hide", refuse("Hiding a comment"))
