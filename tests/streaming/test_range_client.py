"""``RangeClient`` (``hub/ranged.py``), the Range reader's HTTP: bodies straight into the caller's
buffers over kept-alive connections, redirects followed without the token to another host, Hub
errors raised as huggingface_hub's, an ignored range or a cut body as ``ConnectionError``. Against
a real HTTP server on port 0 whose answers each path chooses."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from huggingface_hub.errors import HfHubHTTPError

from publisher.hub.ranged import RangeClient
from publisher.hub.remote import is_transient, retry_after

DATA = os.urandom(300_000)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str | None, int]]] = []  # (path, Authorization, client port)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization"), self.client_address[1]))
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, end = (int(m.group(1)), int(m.group(2))) if m else (0, len(DATA) - 1)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/busy":
            body = b'{"error": "slow down"}'
            self.send_response(429)
            for k, v in (("Retry-After", "3"), ("X-Error-Message", "slow down"), ("Content-Length", str(len(body)))):
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/whole":  # ignores the Range header
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA)
        else:
            part = DATA[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(DATA)}")
            self.send_header("Content-Length", str(len(part)))
            if self.path == "/short":
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(part[: len(part) // 2])
                self.close_connection = True
                return
            self.end_headers()
            self.wfile.write(part)


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _read(url: str, start: int, sizes: list[int], client: RangeClient | None = None) -> bytes:
    bufs = [bytearray(n) for n in sizes]
    c = client or RangeClient()
    c.read_into(url, {"Authorization": "Bearer hf_secret"}, start, sum(sizes), [memoryview(b) for b in bufs])
    if client is None:
        c.close()
    return b"".join(bufs)


def test_ranges_fill_the_buffers_over_one_kept_alive_connection(server: str) -> None:
    client = RangeClient()
    assert _read(f"{server}/file", 1000, [10, 70_000, 5], client) == DATA[1000:71_015]
    assert _read(f"{server}/file", 0, [len(DATA)], client) == DATA
    client.close()
    assert [s[0] for s in Handler.seen] == ["/file", "/file"]
    assert Handler.seen[0][2] == Handler.seen[1][2]  # the same client socket: the connection was reused


def test_a_redirect_to_another_host_is_followed_without_the_token(server: str) -> None:
    assert _read(f"{server}/redirect", 5, [100]) == DATA[5:105]
    assert Handler.seen[0][:2] == ("/redirect", "Bearer hf_secret")
    assert Handler.seen[1][:2] == ("/file", None)  # localhost is not 127.0.0.1: the token stays home


def test_errors_are_the_hub_clients_or_connection_errors(server: str) -> None:
    with pytest.raises(HfHubHTTPError) as busy:
        _read(f"{server}/busy", 0, [10])
    assert busy.value.response.status_code == 429 and is_transient(busy.value) and retry_after(busy.value) == 3.0
    with pytest.raises(ConnectionError, match="ignored a Range request"):
        _read(f"{server}/whole", 0, [10])
    with pytest.raises(ConnectionError, match="closed after 50000 of 100000 bytes") as short:
        _read(f"{server}/short", 0, [100_000])
    assert is_transient(short.value)
