"""``RangeClient`` (``hub/ranged.py``) over HTTPS and through proxies, the way it reads from the
Hub: certificates checked against certifi plus the system's (``SSL_CERT_FILE``), an untrusted
one a clear error that is not retried, redirects between host names without the token, HTTPS
through a CONNECT tunnel and plain HTTP through a forwarding proxy (absolute-URL requests), each
over one kept-alive connection. Against real servers on 127.0.0.1, port 0: an HTTPS server with
a certificate from a throwaway CA (trustme) and minimal proxies that record what they were asked."""

from __future__ import annotations

import base64
import os
import re
import socket
import socketserver
import ssl
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
import trustme

from publisher.hub import ranged
from publisher.hub.ranged import RangeClient
from publisher.hub.remote import Retry, is_transient
from tests.streaming.test_range_client import _read

DATA = os.urandom(300_000)
TIMEOUT_S = 5.0  # every socket here: a hang fails the test instead of stalling the suite
POLL_S = 0.05  # serve_forever's shutdown check: teardown in milliseconds, not 0.5 s
BASIC = "Basic " + base64.b64encode(b"alice:s@cret").decode()  # what the proxy URLs below carry
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class Handler(BaseHTTPRequestHandler):
    """206 answers for any range; ``/redirect`` sends the same file under the other host name."""

    protocol_version = "HTTP/1.1"
    timeout = TIMEOUT_S
    seen: ClassVar[list[tuple[str, str | None, str | None, int]]] = []  # (path, Authorization, Host, client port)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Host"), self.client_address[1]))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"https://127.0.0.1:{self.server.server_address[1]}/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, end = (int(m.group(1)), int(m.group(2))) if m else (0, len(DATA) - 1)
        part = DATA[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(DATA)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if self.path == "/short":  # the body cut halfway, the TCP connection dropped
            self.wfile.write(part[: len(part) // 2])
            self.close_connection = True
            return
        self.wfile.write(part)


class TLSServer(ThreadingHTTPServer):
    """Each accepted socket wrapped in TLS (handshake with a timeout; a failed one drops only it)."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, addr = self.socket.accept()
        sock.settimeout(TIMEOUT_S)
        return self.context.wrap_socket(sock, server_side=True), addr


@dataclass
class Served:
    port: int
    ca_file: Path


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment, no loopback bypass, short client timeouts."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setattr(ranged, "TIMEOUT_S", TIMEOUT_S)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA, tmp_path: Path) -> Iterator[Served]:
    Handler.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    httpd = TLSServer(context)
    thread = threading.Thread(target=httpd.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    yield Served(httpd.server_address[1], ca_file)
    httpd.shutdown()
    httpd.server_close()
    thread.join(TIMEOUT_S)


@pytest.fixture
def http() -> Iterator[int]:
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(TIMEOUT_S)


@dataclass
class ProxyLog:
    lines: list[str] = field(default_factory=list)  # every request line the proxy received
    auth: list[str | None] = field(default_factory=list)  # and each one's Proxy-Authorization
    connections: int = 0


class ProxyHandler(socketserver.StreamRequestHandler):
    """A CONNECT tunnel (then bytes relayed both ways) or a forwarding proxy: each absolute-form
    request line rewritten to origin form and sent on to the host it names, answers relayed back."""

    timeout = TIMEOUT_S
    server: ProxyServer

    def handle(self) -> None:
        self.server.log.connections += 1
        line = self._head()
        if not line:
            return
        method, target, version = line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            with self._upstream(host, int(port)) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                while data := self.rfile.read1(1 << 16):
                    upstream.sendall(data)
            return
        u = urlsplit(target)
        with self._upstream(u.hostname or "", u.port or 80) as upstream:
            while line:  # GETs have no body: a request is its head
                method, target, version = line.split(" ")
                u = urlsplit(target)
                upstream.sendall(f"{method} {u.path}{'?' + u.query if u.query else ''} {version}\r\n".encode() + self._rest)
                line = self._head()

    def _head(self) -> str:
        """The next request line and its Proxy-Authorization (logged), the other header lines kept
        in ``_rest`` to forward; '' at the end."""
        line = self.rfile.readline().decode("latin-1").rstrip("\r\n")
        rest, auth = b"", None
        while line and (header := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.lower() == "proxy-authorization":  # for the proxy only, as a real one does
                auth = value.strip()
            else:
                rest += header
        self._rest = rest + b"\r\n"
        if line:
            self.server.log.lines.append(line)
            self.server.log.auth.append(auth)
        return line

    @contextmanager
    def _upstream(self, host: str, port: int) -> Iterator[socket.socket]:
        """A connection to ``host:port`` whose bytes a thread relays to the client until either
        side ends; shut down on exit (a plain close would not wake that thread's ``recv``)."""
        upstream = socket.create_connection((host, port), timeout=TIMEOUT_S)

        def pump() -> None:
            try:
                while data := upstream.recv(1 << 16):
                    self.wfile.write(data)
            except OSError:
                pass

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        self.server.pumps.append(thread)
        try:
            yield upstream
        finally:
            with suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
            upstream.close()


class ProxyServer(socketserver.ThreadingTCPServer):
    """The proxy, with what it was asked and its relay threads (joined, with a timeout, at the end)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.log = ProxyLog()
        self.pumps: list[threading.Thread] = []


@pytest.fixture
def proxy() -> Iterator[tuple[int, ProxyLog]]:
    server = ProxyServer()
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    yield server.server_address[1], server.log
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT_S)
    for pump in server.pumps:
        pump.join(TIMEOUT_S)


@pytest.fixture(params=["without certifi", "with certifi"])
def certifi(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Both ways ``_context()`` is made: certifi absent (the defaults alone), or present (its
    bundle, here another throwaway CA, and the system's as well)."""
    if request.param == "without certifi":
        monkeypatch.setitem(sys.modules, "certifi", None)  # ``import certifi`` raises ImportError
        return
    bundle = tmp_path / "certifi.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    module = types.ModuleType("certifi")
    setattr(module, "where", lambda: str(bundle))  # noqa: B010 - a module made here has no declared attribute
    monkeypatch.setitem(sys.modules, "certifi", module)


def test_https_ranges_with_the_ca_from_ssl_cert_file_over_one_kept_alive_connection(
    https: Served, certifi: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.ca_file))
    client = RangeClient()  # after the variable is set: the client's SSL context is made once
    url = f"https://127.0.0.1:{https.port}/file"
    assert _read(url, 1000, [10, 70_000, 5], client) == DATA[1000:71_015]
    assert _read(url, 0, [len(DATA)], client) == DATA
    client.close()
    assert [s[0] for s in Handler.seen] == ["/file", "/file"]
    assert Handler.seen[0][3] == Handler.seen[1][3]  # the same client socket: the connection was reused


def test_an_untrusted_certificate_is_a_certificate_error_not_retried(https: Served) -> None:
    sleeps: list[float] = []
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        Retry(sleep=sleeps.append).call(lambda: _read(f"https://127.0.0.1:{https.port}/file", 0, [10]), "reading")
    assert not is_transient(err.value) and sleeps == []  # one try: a bad certificate stays bad
    assert "certificate verify failed" in str(err.value) and Handler.seen == []


def test_a_tls_body_cut_short_is_a_transient_connection_error(https: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.ca_file))
    with pytest.raises(ConnectionError) as short:
        _read(f"https://127.0.0.1:{https.port}/short", 0, [100_000])
    assert is_transient(short.value)


def test_an_https_redirect_to_another_host_name_is_followed_without_the_token(
    https: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.ca_file))
    assert _read(f"https://localhost:{https.port}/redirect", 5, [100]) == DATA[5:105]
    assert [s[:3] for s in Handler.seen] == [
        ("/redirect", "Bearer hf_secret", f"localhost:{https.port}"),
        ("/file", None, f"127.0.0.1:{https.port}"),  # another host: the token stays home
    ]


def test_https_through_a_connect_proxy_is_one_tunnel_to_the_target(
    https: Served, proxy: tuple[int, ProxyLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_port, log = proxy
    monkeypatch.setenv("SSL_CERT_FILE", str(https.ca_file))
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:s%40cret@127.0.0.1:{proxy_port}")  # no NO_PROXY: loopback not bypassed
    client = RangeClient()
    url = f"https://127.0.0.1:{https.port}/file"
    assert _read(url, 7, [1000], client) == DATA[7:1007]
    assert _read(url, 0, [len(DATA)], client) == DATA
    client.close()
    assert [line.rsplit(" ", 1)[0] for line in log.lines] == [f"CONNECT 127.0.0.1:{https.port}"]  # HTTP/1.0 before 3.12
    assert log.auth == [BASIC] and log.connections == 1  # the credentials on CONNECT, decoded
    assert [s[:3] for s in Handler.seen] == [("/file", "Bearer hf_secret", f"127.0.0.1:{https.port}")] * 2
    assert Handler.seen[0][3] == Handler.seen[1][3]  # the proxy's one upstream socket: the tunnel was reused


@pytest.mark.parametrize(("userinfo", "auth"), [("", None), ("alice:s%40cret@", BASIC)])
def test_plain_http_through_a_proxy_sends_absolute_urls(
    http: int, proxy: tuple[int, ProxyLog], monkeypatch: pytest.MonkeyPatch, userinfo: str, auth: str | None
) -> None:
    proxy_port, log = proxy
    monkeypatch.setenv("HTTP_PROXY", f"http://{userinfo}127.0.0.1:{proxy_port}")
    client = RangeClient()
    url = f"http://127.0.0.1:{http}/file"
    assert _read(url, 3, [10, 20], client) == DATA[3:33]
    assert _read(url, 100, [50_000], client) == DATA[100:50_100]
    client.close()
    assert log.lines == [f"GET {url} HTTP/1.1"] * 2 and log.connections == 1  # absolute form, one connection
    assert log.auth == [auth] * 2  # the proxy's credentials on every request, if it has any
    assert [s[:3] for s in Handler.seen] == [("/file", "Bearer hf_secret", f"127.0.0.1:{http}")] * 2
