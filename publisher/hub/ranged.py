"""Reading parts of a file on a Hub: byte ranges into the caller's buffers, small files whole,
safetensors headers.

The catalog and the card-only release both describe a published model without its weights:
config files whole, and each shard as its real header followed by a sparse hole of the
shard's true size, so the card stage's ``model_facts`` reads it like the real thing. A
streaming build reads the weights by Range requests (``RangeClient``): every byte of both
parents goes through it, so its body goes from the socket straight into the engine's
buffers (``readinto``), with no chunk objects, joins or copies in between.
"""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import struct
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from publisher.tensors import MAX_HEADER_BYTES

FIRST_READ = 64 << 10  # one request covers the header of a shard of ~600 tensors (a 7B shard: ~300)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
REDIRECTS = 5
ERROR_BODY = 64 << 10
TIMEOUT_S = 60.0


class RangeClient:
    """Range GETs over keep-alive ``http.client`` connections (one client per thread), redirects
    followed (the Hub sends LFS files to a CDN; the token is not sent to another host), proxies
    from the environment. Errors are huggingface_hub's (``hf_raise_for_status``) or
    ``ConnectionError``, so ``Retry`` treats them as it treats the Hub client's."""

    def __init__(self) -> None:
        self._conns: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        self._ssl: ssl.SSLContext | None = None

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def read_into(self, url: str, headers: Mapping[str, str], start: int, length: int, views: list[memoryview]) -> None:
        """Exactly ``length`` bytes at ``start`` into ``views``, in order (their sizes sum to ``length``)."""
        try:
            self._read_into(url, dict(headers), start, length, views)
        except http.client.HTTPException as e:  # IncompleteRead, BadStatusLine…: the connection failed
            self.close()
            raise ConnectionError(f"{type(e).__name__}: {e}") from None
        except OSError:
            self.close()
            raise

    def _read_into(self, url: str, headers: dict[str, str], start: int, length: int, views: list[memoryview]) -> None:
        headers["Range"] = f"bytes={start}-{start + length - 1}"
        origin = urlsplit(url).netloc
        for _ in range(REDIRECTS + 1):
            conn, target, proxy_headers = self._conn(url)
            conn.request("GET", target, headers={**headers, **proxy_headers})
            r = conn.getresponse()
            if r.status in (301, 302, 303, 307, 308) and r.getheader("Location"):
                r.read(ERROR_BODY)
                url = urljoin(url, r.getheader("Location", ""))
                if urlsplit(url).netloc != origin:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if r.will_close or not r.isclosed():
                    self.close()
                continue
            break
        else:
            raise ConnectionError(f"more than {REDIRECTS} redirects for {url}")
        if r.status >= 400:
            try:
                _raise_http(r, url)
            finally:
                self.close()
        span = _CONTENT_RANGE.match(r.getheader("Content-Range") or "")
        if r.status != 206 or span is None or int(span.group(1)) != start or int(span.group(2)) != start + length - 1:
            self.close()
            raise ConnectionError(f"the server ignored a Range request (HTTP {r.status}, {r.getheader('Content-Range')})")
        done = 0
        for view in views:
            got = 0
            while got < len(view):
                n = r.readinto(view[got:])
                if not n:
                    self.close()
                    raise ConnectionError(f"connection closed after {done + got} of {length} bytes")
                got += n
            done += got
        if r.will_close or r.length:
            self.close()  # the server did not end the body where the range ends: not reusable

    def _conn(self, url: str) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        """The connection for ``url``'s host, the request target, and the headers for a plain-HTTP proxy."""
        u = urlsplit(url)
        https = u.scheme == "https"
        host, port = u.hostname or "", u.port or (443 if https else 80)
        target = u.path + (f"?{u.query}" if u.query else "")
        proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(u.scheme)
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}") if proxy is not None else None
        auth = _proxy_auth(p) if p is not None else {}
        key = (u.scheme, host, port)
        conn = self._conns.get(key)
        if conn is None:
            if p is not None:
                if https:
                    conn = http.client.HTTPSConnection(p.hostname or "", p.port or 80, timeout=TIMEOUT_S, context=self._context())
                    conn.set_tunnel(host, port, headers=auth)  # the credentials go to the proxy only, on CONNECT
                else:
                    conn = http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=TIMEOUT_S)
            elif https:
                conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=self._context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
            self._conns[key] = conn
        if p is not None and not https:
            return conn, url, auth  # a plain-HTTP proxy takes the absolute URL, and its credentials on each request
        return conn, target, {}

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
            self._ssl.load_default_certs()  # and the system's (SSL_CERT_FILE, SSL_CERT_DIR)
        return self._ssl


def _proxy_auth(proxy: SplitResult) -> dict[str, str]:
    """Basic credentials from a proxy URL (``http://user:pass@host:port``), as urllib sends them:
    without them an authenticating proxy refuses every request (407)."""
    if proxy.username is None:
        return {}
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}


def _raise_http(r: http.client.HTTPResponse, url: str) -> None:
    """The Hub client's own error for an HTTP error answer (its message, status and headers)."""
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    body = r.read(ERROR_BODY)
    response = httpx2.Response(r.status, headers=r.getheaders(), content=body, request=httpx2.Request("GET", url))
    hf_raise_for_status(response)
    raise ConnectionError(f"HTTP {r.status} for {url}")  # unreachable: hf_raise_for_status raised


class TooLarge(Exception):
    """A file asked for whole is bigger than the caller's limit."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def total_size(headers: Mapping[str, str], status: int) -> int | None:
    """The file's full size from a (possibly partial) response."""
    if status == 206:
        m = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if m:
            return int(m.group(3))
    for key in ("X-Linked-Size", "Content-Length"):
        value = headers.get(key)
        if value and value.isdigit():
            return int(value)
    return None


def read_prefix(
    session: Any,
    endpoint: str,
    headers: Mapping[str, str],
    repo_id: str,
    filename: str,
    revision: str,
    limit: int,
    *,
    ranged: bool,
) -> tuple[bytes, int]:
    """Up to ``limit`` bytes from the start of a file, and the file's full size.

    With ``ranged`` a ``Range`` header asks for just those bytes; a server that ignores it
    (200) is read only as far as needed and the connection closed, never to the end. Without
    it, a file larger than ``limit`` raises TooLarge. Hub errors raise as huggingface_hub's.
    """
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import hf_raise_for_status

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    request_headers = dict(headers)
    if ranged:
        request_headers["Range"] = f"bytes=0-{limit - 1}"
    with session.stream("GET", url, headers=request_headers, follow_redirects=True, timeout=60) as r:
        if r.status_code >= 400:
            r.read()
            hf_raise_for_status(r)
        total = total_size(r.headers, r.status_code)
        if not ranged and total is not None and total > limit:
            raise TooLarge(total)
        data = bytearray()
        for chunk in r.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    return bytes(data[:limit]), total if total is not None else len(data)


def safetensors_header(read: Callable[[int], tuple[bytes, int]], name: str) -> tuple[bytes, int]:
    """A shard's header bytes (length prefix included) and its size, in one read or two.

    ``read(limit)`` returns up to ``limit`` leading bytes and the file size; a file that is
    not a safetensors file raises ValueError with a one-line reason."""
    data, total = read(FIRST_READ)
    if len(data) < 8:
        raise ValueError(f"{name} is {total} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > total:
        raise ValueError(f"{name}: header length {n} does not fit in a {total}-byte file")
    if 8 + n > len(data):
        data, total = read(8 + n)
    return data[: 8 + n], total


def write_header_copy(dest: Path, header: bytes, size: int) -> None:
    """The shard as its real header and a hole up to its true size (no disk for the data)."""
    with open(dest, "wb") as f:
        f.write(header)
        f.truncate(size)
