"""The HTTP layer: stdlib ThreadingHTTPServer, raw-path routing, requests and responses.

Why the stdlib: one thread per connection is plenty for a loopback Hub (the load benchmark
runs 36 clients; the server serves at most ``max_connections`` at once, 256 by default), large files go out with ``socket.sendfile`` (no copy through Python),
and there is nothing to install. Routing is on the raw path, split on ``/`` and then
unquoted per segment, because the client sends revisions and tree paths ``%2F``-encoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote

from publisher.hub.server.errors import ApiError, BadRequest, TooLarge
from publisher.hub.server.throttle import CHUNK, Limits, TokenBucket

log = logging.getLogger("publisher.hub.server")

JSON_LIMIT = 64 << 20  # bodies parsed in memory (commit NDJSON is streamed)


class Disconnect(Exception):
    """The client went away (or a fault dropped it): no response can be sent."""


class BodyReader:
    """Reads a request body exactly once, Content-Length or chunked, and knows what is left."""

    def __init__(self, rfile: BinaryIO, headers: Message, bucket: TokenBucket | None = None) -> None:
        self._rfile = rfile
        self._bucket = bucket  # the upload rate limit (``throttle``), None: unlimited
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        length = headers.get("Content-Length")
        try:
            self.length: int | None = int(length) if length is not None else (None if self.chunked else 0)
        except ValueError as e:
            raise BadRequest("invalid Content-Length") from e
        if self.length is not None and self.length < 0:
            raise BadRequest("invalid Content-Length")
        self.consumed = 0
        self._chunk_left = 0
        self._done = self.length == 0

    @property
    def complete(self) -> bool:
        return self._done

    def read(self, n: int = 1 << 20) -> bytes:
        """Up to ``n`` bytes; b"" at the end. Raises Disconnect on a short body."""
        data = self._read(n)
        if self._bucket is not None and data:
            self._bucket.take(len(data))
        return data

    def _read(self, n: int) -> bytes:
        if self._done:
            return b""
        if not self.chunked:
            assert self.length is not None
            want = min(n, self.length - self.consumed)
            data = self._rfile.read(want)
            if not data:
                raise Disconnect("body ended early")
            self.consumed += len(data)
            if self.consumed >= self.length:
                self._done = True
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(1024)
            if not line:
                raise Disconnect("chunked body ended early")
            try:
                self._chunk_left = int(line.split(b";")[0].strip(), 16)
            except ValueError as e:
                raise BadRequest("invalid chunk size") from e
            if self._chunk_left == 0:
                while self._rfile.readline(1024).strip():
                    pass  # trailers
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise Disconnect("chunked body ended early")
        self._chunk_left -= len(data)
        self.consumed += len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)  # CRLF after the chunk
        return data

    def read_into(self, buf: bytearray) -> int:
        """Fill ``buf`` from the body, straight from the socket (no chunk list, no join); returns
        the bytes read, fewer than ``len(buf)`` only at the body's end."""
        view, got = memoryview(buf), 0
        if self.chunked:
            while got < len(buf) and (data := self.read(min(CHUNK, len(buf) - got))):
                view[got : got + len(data)] = data
                got += len(data)
            return got
        assert self.length is not None
        while got < len(buf) and not self._done:
            want = min(len(buf) - got, self.length - self.consumed, CHUNK if self._bucket is not None else len(buf))
            n = self._rfile.readinto(view[got : got + want])  # type: ignore[attr-defined]
            if not n:
                raise Disconnect("body ended early")
            if self._bucket is not None:
                self._bucket.take(n)
            got += n
            self.consumed += n
            self._done = self.consumed >= self.length
        return got

    def iter(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        while True:
            data = self.read(chunk)
            if not data:
                return
            yield data

    def read_all(self, limit: int = JSON_LIMIT) -> bytes:
        if self.length is not None and self.length > limit:
            raise TooLarge(f"request body over {limit} bytes")
        parts, total = [], 0
        for data in self.iter():
            total += len(data)
            if total > limit:
                raise TooLarge(f"request body over {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def iter_lines(self, limit: int = 1 << 30) -> Iterator[bytes]:
        buf = b""
        total = 0
        for data in self.iter():
            total += len(data)
            if total > limit:
                raise TooLarge(f"request body over {limit} bytes")
            buf += data
            *lines, buf = buf.split(b"\n")
            yield from lines
        if buf:
            yield buf


@dataclass
class Request:
    method: str
    path: str  # raw, still percent-encoded
    segments: list[str]  # unquoted, one per '/'
    query: dict[str, list[str]]
    headers: Message
    body: BodyReader
    params: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("1", "true", "yes")

    def json(self) -> Any:
        raw = self.body.read_all()
        try:
            return json.loads(raw or b"null")
        except RecursionError as e:
            raise BadRequest("request body is nested too deeply") from e
        except ValueError as e:
            raise BadRequest(f"request body is not JSON: {e}") from e


@dataclass
class FileBody:
    path: Path
    offset: int
    length: int


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: FileBody | None = None
    content_length: int | None = None  # for HEAD: the length a GET would send
    stream: Iterator[bytes] | None = None  # a body of unknown length, sent chunked (closed after)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, h, json.dumps(obj).encode())

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, {"Content-Type": "text/html; charset=utf-8"}, text.encode())

    @classmethod
    def from_error(cls, err: ApiError) -> Response:
        headers = {"X-Error-Message": header_safe(err.message), **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        return cls.json({"error": err.message}, err.status, headers)


def header_safe(text: str, limit: int = 2000) -> str:
    """One line of latin-1 text: header values must not carry newlines or other code points."""
    flat = " ".join(text.split())
    return flat.encode("latin-1", "replace").decode("latin-1")[:limit]


Handler = Callable[[Request], Response]


class Router:
    """Patterns such as ``/api/{rtype}/{ns}/{name}/tree/{rev}/{path*}``; ``{x*}`` takes the rest."""

    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], list[re.Pattern[str]], str | None, Handler, str]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        parts = pattern.strip("/").split("/") if pattern != "/" else []
        rest = None
        if parts and re.fullmatch(r"\{(\w+)\*\}", parts[-1]):
            rest = parts.pop()[1:-2]
        compiled = [re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(p)) + r"\Z") for p in parts]
        self._routes.append((frozenset(methods.split()), compiled, rest, handler, pattern))

    def match(self, method: str, segments: list[str]) -> tuple[Handler, dict[str, str], str] | None:
        """The handler, its path parameters and the matched pattern (for request statistics)."""
        for methods, compiled, rest, handler, pattern in self._routes:
            if method not in methods and not (method == "HEAD" and "GET" in methods):
                continue
            if len(segments) < len(compiled) or (rest is None and len(segments) != len(compiled)):
                continue
            params: dict[str, str] = {}
            for seg, pat in zip(segments, compiled, strict=False):
                m = pat.match(seg)
                if m is None:
                    break
                params.update(m.groupdict())
            else:
                if rest is not None:
                    params[rest] = "/".join(segments[len(compiled) :])
                return handler, params, pattern
        return None


class HubHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` at once.

    A connection over the bound waits in the accept loop up to ``wait_s`` for a slot (later
    ones queue in the kernel's backlog), then is answered 503 with ``Retry-After`` and
    closed, so a flood of connections cannot exhaust threads or memory.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: Any, *, max_connections: int = 256, wait_s: float = 5.0) -> None:
        self.app = app
        self.max_connections = max_connections
        self.wait_s = wait_s
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, HubRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(timeout=self.wait_s):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        message = f"server busy: all {self.max_connections} connections are in use; retry shortly"
        body = json.dumps({"error": message}).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            f"X-Error-Message: {message}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            request.sendall(head.encode() + body)
        self.shutdown_request(request)


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "publisher-localhub/1"
    timeout = 120  # idle keep-alive connections give their thread back
    server: HubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _handle(self) -> None:
        # One handler instance serves every request of a keep-alive connection: nothing
        # request-specific may live on ``self`` beyond this call.
        raw = self.path
        path, _, qs = raw.partition("?")
        segments = [unquote(s) for s in path.split("/")[1:]] if path not in ("", "/") else []
        try:
            body = BodyReader(self.rfile, self.headers, self._limits.up)  # type: ignore[arg-type]
        except ApiError as err:
            self.close_connection = True
            self._send(Response.from_error(err))
            return
        request = Request(self.command, path, segments, parse_qs(qs, keep_blank_values=True), self.headers, body)
        try:
            response = self.server.app.dispatch(request)
        except Disconnect:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except ApiError as err:
            response = Response.from_error(err)
        except Exception:
            log.error("internal error on %s %s\n%s", self.command, path, traceback.format_exc())
            response = Response.from_error(ApiError("internal server error", status=500))
        if not body.complete:
            # Unread body (an early error): drain small ones, else drop the connection.
            if body.length is not None and body.length - body.consumed <= (1 << 20):
                try:
                    for _ in body.iter():
                        pass
                except (Disconnect, ApiError, OSError):
                    self.close_connection = True
            else:
                self.close_connection = True
        self._send(response)

    @property
    def _limits(self) -> Limits:
        return self.server.app.limits

    def _send(self, response: Response) -> None:
        down = self._limits.down
        try:
            self.send_response(response.status)
            length = response.file.length if response.file else len(response.body)
            if self.command == "HEAD" and response.content_length is not None:
                length = response.content_length
            framing = {"Transfer-Encoding": "chunked"} if response.stream is not None else {"Content-Length": str(length)}
            headers = {**framing, **response.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return
            sent = 0
            if response.stream is not None:
                for data in response.stream:
                    if data:
                        if down is not None:
                            down.take(len(data))
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        sent += len(data)
                self.wfile.write(b"0\r\n\r\n")
            elif response.file is not None and response.file.length > 0:
                with open(response.file.path, "rb") as f:
                    sent = self._send_file(f, response.file, down)
            elif response.body:
                self.wfile.write(response.body)
                sent = len(response.body)
            self.server.app.record_sent(unquote(self.path.partition("?")[0]), sent)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError, Disconnect):
            self.close_connection = True  # a stream that raises Disconnect ends unterminated: the client sees it fail
        finally:
            close = getattr(response.stream, "close", None)
            if close is not None:
                close()  # a generator's cleanup (e.g. ending a subprocess) runs even on a dropped client

    def _send_file(self, f: BinaryIO, body: FileBody, down: TokenBucket | None) -> int:
        """``sendfile`` (no copy through Python); under a rate limit, one ``CHUNK`` per take."""
        if down is None:
            return self.connection.sendfile(f, body.offset, body.length)
        sent = 0
        while sent < body.length:
            n = min(CHUNK, body.length - sent)
            down.take(n)
            done = self.connection.sendfile(f, body.offset + sent, n)
            if done <= 0:
                break
            sent += done
        return sent
