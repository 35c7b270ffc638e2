"""git's smart HTTP protocol for clone, fetch and ls-remote, by ``git upload-pack --stateless-rpc``.

Each Hub repo *is* a bare git repo, so serving git is running git's own server side on it:
``GET …/info/refs?service=git-upload-pack`` is ``upload-pack --advertise-refs`` behind the
service line, ``POST …/git-upload-pack`` pipes the request into ``upload-pack`` and streams
its answer back (chunked, never held in memory). Large files are LFS pointers in git, as on
the Hub; ``git lfs pull`` fetches them from the LFS batch API (``lfs_batch.py``).

Access is the API's: public repos anonymously, private ones with a token as the password
(any user name); anonymous requests for a repo that does not exist or is private get the
same 401 challenge, and a token that may not read it gets the same 404 as a missing repo.
Push (``git-receive-pack``) is refused with a message git shows as ``remote error``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import subprocess
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from publisher.hub.server.errors import ApiError, BadRequest, Forbidden, RepoNotFound
from publisher.hub.server.http import Disconnect, Request, Response, Router
from publisher.hub.server.storage import RepoKey

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp
    from publisher.hub.server.storage import Repo

log = logging.getLogger("publisher.hub.server")

PREFIX_TYPES = {"datasets": "dataset", "spaces": "space"}
REQUEST_LIMIT = 64 << 20  # an upload-pack request is wants and haves: small
GIT_PROTOCOL = re.compile(r"[A-Za-z0-9=:.,-]{1,100}")  # e.g. version=2, passed to upload-pack
PUSH_REFUSED = (
    "pushing is not supported by the local Hub: upload with huggingface_hub "
    "(HfApi.upload_folder, `hf upload`) or `publisher publish`"
)
CHALLENGE = {"WWW-Authenticate": 'Basic realm="local Hub: a token as the password"'}


def pkt_line(text: str) -> bytes:
    data = text.encode()
    return b"%04x%s" % (len(data) + 4, data)


def basic_password(value: str) -> str | None:
    """The password of a Basic ``Authorization`` value (git and git-lfs send the token there)."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password.strip() or None if sep else None


def repo_name(name: str) -> str:
    return name[: -len(".git")] if name.endswith(".git") else name


def register(app: HubApp, router: Router) -> None:
    def git_repo(req: Request) -> Repo:
        rtype = PREFIX_TYPES.get(req.params["rtype"]) if "rtype" in req.params else "model"
        name = repo_name(req.params["name"])
        if rtype is None:
            raise RepoNotFound(f"{req.params['ns']}/{name}")
        key: RepoKey = app.key(rtype, req.params["ns"], name)
        try:
            return app.read_repo(req, key)
        except RepoNotFound as e:
            if app.identity(req) is None:  # git asks for credentials on this challenge
                raise ApiError(e.message, status=401, code=e.code, headers=CHALLENGE) from e
            raise

    def info_refs(req: Request) -> Response:
        service = req.arg("service")
        if service == "git-receive-pack":
            git_repo(req)
            body = pkt_line("# service=git-receive-pack\n") + b"0000" + pkt_line(f"ERR {PUSH_REFUSED}\n")
            return Response(200, _headers("application/x-git-receive-pack-advertisement"), body)
        if service != "git-upload-pack":
            raise Forbidden("the local Hub speaks git's smart HTTP protocol only (git 1.6.6 or newer)")
        repo = git_repo(req)
        head = pkt_line("# service=git-upload-pack\n") + b"0000"
        stream = _upload_pack(repo, _protocol(req), None, advertise=True)
        return Response(200, _headers("application/x-git-upload-pack-advertisement"), stream=_prepend(head, stream))

    def upload_pack(req: Request) -> Response:
        repo = git_repo(req)
        raw = req.body.read_all(limit=REQUEST_LIMIT)
        encoding = (req.headers.get("Content-Encoding") or "").lower()
        if encoding in ("gzip", "x-gzip"):
            try:
                raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
            except zlib.error as e:
                raise BadRequest(f"request body is not gzip: {e}") from e
        elif encoding not in ("", "identity"):
            raise BadRequest(f"unsupported Content-Encoding {encoding!r}")
        stream = _upload_pack(repo, _protocol(req), raw, advertise=False)
        return Response(200, _headers("application/x-git-upload-pack-result"), stream=stream)

    def receive_pack(req: Request) -> Response:
        git_repo(req)
        raise Forbidden(PUSH_REFUSED)

    for prefix in ("", "/{rtype}"):
        router.add("GET", f"{prefix}/{{ns}}/{{name}}/info/refs", info_refs)
        router.add("POST", f"{prefix}/{{ns}}/{{name}}/git-upload-pack", upload_pack)
        router.add("POST", f"{prefix}/{{ns}}/{{name}}/git-receive-pack", receive_pack)


def _headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": "no-cache", "Expires": "Fri, 01 Jan 1980 00:00:00 GMT"}


def _protocol(req: Request) -> str | None:
    value = req.headers.get("Git-Protocol")
    return value if value and GIT_PROTOCOL.fullmatch(value) else None


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield head
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _upload_pack(repo: Repo, protocol: str | None, request: bytes | None, *, advertise: bool) -> Iterator[bytes]:
    """``git upload-pack --stateless-rpc`` on the repo, its output as it comes; killed if the client leaves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    args = ["git", "-c", "uploadpack.allowFilter=true", "upload-pack", "--stateless-rpc"]
    args += ["--advertise-refs"] if advertise else []
    proc = subprocess.Popen(
        [*args, str(repo.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    drain.start()

    def feed() -> None:
        with contextlib.suppress(OSError):
            if request:
                proc.stdin.write(request)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    finished = False
    try:
        while data := os.read(proc.stdout.fileno(), 1 << 16):
            yield data
        code = proc.wait(timeout=60)
        drain.join(timeout=5)
        if code != 0:
            log.warning("git upload-pack on %s exited %s: %s", repo.path, code, b"".join(errors)[-500:])
            raise Disconnect("upload-pack failed")  # an unterminated body: git reports the failure
        finished = True
    finally:
        if not finished and proc.poll() is None:
            proc.kill()
        proc.wait()
        feeder.join(timeout=5)
        proc.stdout.close()
