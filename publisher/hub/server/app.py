"""The local Hub application: authentication, access rules, dispatch; and ``LocalHub`` to run it.

``LocalHub`` starts the server on a thread (tests, the demo) and ``serve`` runs it in the
foreground (``publisher hub serve``). One server per root at a time: the root is locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from publisher.hub.ids import RESERVED_NAMESPACES, InvalidName, check_repo_part
from publisher.hub.server import (
    git_http,
    lfs_batch,
    pages,
    routes_files,
    routes_manage,
    routes_repo,
    routes_upload,
    trusted,
    xet,
)
from publisher.hub.server.atomic import write_atomic
from publisher.hub.server.auth import Identity, Scope, TokenStore
from publisher.hub.server.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    RepoNotFound,
    Unauthorized,
)
from publisher.hub.server.faults import Faults
from publisher.hub.server.http import Disconnect, HubHTTPServer, Request, Response, Router
from publisher.hub.server.lfs import TicketSigner
from publisher.hub.server.rootdir import make_root
from publisher.hub.server.storage import Repo, RepoKey, Store
from publisher.hub.server.throttle import Limits

log = logging.getLogger("publisher.hub.server")

# Routes are tried in this order; the pages (``/{ns}/{name}``) come last.
ROUTE_MODULES = (
    routes_repo,
    routes_manage,
    trusted,
    routes_upload,
    routes_files,
    xet,
    lfs_batch,
    git_http,
    pages,
)

TYPE_SEGMENTS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"datasets": "dataset", "spaces": "space"}


@dataclass
class Settings:
    page_size: int = 1000  # tree entries per page (the Hub's own figure)
    commits_page_size: int = 50
    multipart_threshold: int = 64 << 20  # LFS uploads above this go in parts
    chunk_size: int = 16 << 20
    # The URL clients reach the server at: every URL the server hands out (LFS upload and
    # verify links, repo and commit URLs, pagination) is built from it, never from the
    # request's Host header. None: http://HOST:PORT of the listening socket.
    public_url: str | None = None
    # At most this many connections are served at once (one thread each); a connection
    # over the bound waits up to ``connection_wait_s`` for a slot, then gets a 503.
    max_connections: int = 256
    connection_wait_s: float = 5.0
    # Bandwidth limits in bytes/s for benchmarks (``throttle``): what the server sends, what
    # it receives, each shared by all connections. None: unlimited.
    max_rate_down: int | None = None
    max_rate_up: int | None = None


class RootLocked(RuntimeError):
    pass


class HubApp:
    def __init__(self, root: Path, *, faults: Faults | None = None, settings: Settings | None = None) -> None:
        self.root = make_root(Path(root))
        self.faults = faults if faults is not None else Faults()
        self.settings = settings or Settings()
        self.limits = Limits.rates(self.settings.max_rate_down, self.settings.max_rate_up)
        self.store = Store(self.root, self.faults)
        self.tokens = TokenStore(self.root)
        self.signer = TicketSigner(self._secret())
        self.trusted = trusted.TrustedPublishing(self.root, self._secret())
        self.router = Router()
        self.stats: Counter[str] = Counter()  # "PUT /lfs-upload/{ticket}" → requests routed
        self.finished: Counter[str] = Counter()  # the same keys → handlers returned or failed (tests wait on it)
        self.sent: Counter[str] = Counter()  # request path → response body bytes sent (tests count downloads)
        self._stats_lock = threading.Lock()
        for module in ROUTE_MODULES:
            module.register(self, self.router)

    def _secret(self) -> bytes:
        path = self.root / "secret"
        if not path.is_file():
            write_atomic(path, secrets.token_hex(32).encode())
            path.chmod(0o600)
        return path.read_bytes().strip()

    # ------------------------------------------------------------- dispatch
    def dispatch(self, req: Request) -> Response:
        rule = self.faults.on_request(req.method, req.path)
        if rule is not None:
            if rule.action == "status":
                headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
                return Response.from_error(ApiError(f"injected fault {rule.status}", status=rule.status, headers=headers))
            if rule.action == "drop":
                remaining = rule.after_bytes
                while remaining > 0 and req.body.read(min(remaining, 1 << 16)):
                    remaining -= 1 << 16
                raise Disconnect("injected drop")
            Faults.fire(rule, f"{req.method} {req.path}")
        # Xet CAS requests carry the CAS token the xet routes issued, not a Hub token
        req.context["identity"] = None if req.path.startswith(xet.CAS_PREFIX) else self.authenticate(req)
        match = self.router.match(req.method, req.segments)
        if match is None:
            raise NotFound(f"no route for {req.method} {req.path}: the local Hub does not serve this (README: local Hub)")
        handler, params, pattern = match
        req.params = params
        key = f"{req.method} {pattern}"
        with self._stats_lock:
            self.stats[key] += 1
        try:
            return handler(req)
        finally:
            with self._stats_lock:
                self.finished[key] += 1

    def record_sent(self, path: str, nbytes: int) -> None:
        with self._stats_lock:
            self.sent[path] += nbytes

    def authenticate(self, req: Request) -> Identity | None:
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":  # git and git-lfs: the token is the password
            token = git_http.basic_password(token) or ""
        elif scheme.lower() != "bearer":
            return None
        if not token.strip():
            return None
        if token.strip().startswith(trusted.TOKEN_PREFIX):
            identity = self.trusted.identity(token.strip())
            if identity is None:
                raise Unauthorized("Invalid or expired trusted-publishing token: exchange a new ID token")
            return identity
        identity = self.tokens.lookup(token.strip())
        if identity is None:
            raise Unauthorized("Invalid credentials in Authorization header")
        return identity

    def base_url(self, req: Request) -> str:
        """The configured public URL (``Settings.public_url``); the Host header is not trusted."""
        return self.public_url

    public_url = "http://127.0.0.1"

    # ------------------------------------------------------------- access rules
    @staticmethod
    def identity(req: Request) -> Identity | None:
        return req.context.get("identity")

    @staticmethod
    def key(repo_type: str, namespace: str, name: str) -> RepoKey:
        try:
            check_repo_part(namespace, "namespace")
            check_repo_part(name)
        except InvalidName as e:
            raise BadRequest(str(e)) from e
        return RepoKey(repo_type, namespace, name)

    @staticmethod
    def can_read(who: Identity | None, repo: Repo) -> bool:
        return not repo.meta.private or (who is not None and who.can_read(repo.key))

    def read_repo(self, req: Request, key: RepoKey) -> Repo:
        who = self.identity(req)
        repo = self.store.get(key)
        if repo is None or not self.can_read(who, repo):
            raise RepoNotFound(key.repo_id, anonymous=who is None)
        return repo

    def write_repo(self, req: Request, key: RepoKey) -> tuple[Repo, Identity]:
        repo = self.read_repo(req, key)
        return repo, self.check_write(self.identity(req), key.namespace, repo=key)

    @staticmethod
    def check_write(who: Identity | None, namespace: str, *, repo: RepoKey | None = None) -> Identity:
        """``who`` may write to ``namespace`` (creating repos there), or only to ``repo`` when
        the token is scoped to one repo (trusted publishing)."""
        if who is None:
            raise Unauthorized("You must be authenticated to do this (send a write token)")
        if not (who.owns(namespace) or (repo is not None and who.can_read(repo))):
            if who.repo is not None:
                raise Forbidden(f"This token is scoped to the repo {who.repo.repo_id}; it cannot write elsewhere")
            raise Forbidden(f'You don\'t have the rights to write to the namespace "{namespace}"')
        if who.scope != "write":
            raise Forbidden("This token has read scope; writing needs a token with write scope")
        if namespace.lower() in RESERVED_NAMESPACES:
            raise BadRequest(f'"{namespace}" is a reserved name')
        return who


class LocalHub:
    """A Hub-compatible server on a thread: ``with LocalHub(root) as hub: hub.url``."""

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: Faults | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self.app = HubApp(self.root, faults=faults, settings=settings)
        self._server: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock_file: IO[str] | None = None

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def url(self) -> str:
        """Where this process reaches the server (the socket it listens on)."""
        if self._server is None:
            raise RuntimeError("LocalHub is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def public_url(self) -> str:
        """The URL the server hands out to clients (``Settings.public_url`` or ``url``)."""
        return self.app.public_url

    def create_token(self, user: str, scope: Scope = "write", *, orgs: tuple[str, ...] = ()) -> str:
        return self.app.tokens.create(user, scope, orgs=orgs)

    def start(self) -> LocalHub:
        self._lock_file = lock_root(self.root)
        self.app.store.recover()
        self.app.store.lfs.gc()  # objects of deleted repos
        s = self.app.settings
        self._server = HubHTTPServer(
            (self.host, self.port), self.app, max_connections=s.max_connections, wait_s=s.connection_wait_s
        )
        self.port = self._server.server_address[1]
        self.app.public_url = (s.public_url or f"http://{self.host}:{self.port}").rstrip("/")
        server = self._server
        # a short poll interval makes stop() quick (tests start and stop many servers)
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name=f"localhub:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.app.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``publisher hub serve``); starts if needed."""
        if self._server is None:
            self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def lock_root(root: Path) -> IO[str]:
    make_root(root)
    f = open(root / "server.lock", "a+")  # noqa: SIM115 - held for the server's lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        f.close()
        raise RootLocked(f"another local Hub server is already using {root}") from e
    with contextlib.suppress(OSError):
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
    return f

