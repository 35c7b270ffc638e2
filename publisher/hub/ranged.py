"""Reading the start of a file on a Hub: small files whole, safetensors headers by Range.

The catalog and the card-only release both describe a published model without its weights:
config files whole, and each shard as its real header followed by a sparse hole of the
shard's true size, so the card stage's ``model_facts`` reads it like the real thing.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from publisher.tensors import MAX_HEADER_BYTES

FIRST_READ = 64 << 10  # one request covers the header of a shard of ~600 tensors (a 7B shard: ~300)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


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
