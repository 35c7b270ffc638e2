"""The Xet storage formats the local Hub reads: chunk and xorb hashes, xorbs, shards.

Written from xet-core's format description (``xet_core_structures``): a xorb is a run of
chunks, each an 8-byte header (version, compressed length, scheme, uncompressed length;
lengths 3 bytes little-endian) and its bytes (raw, an LZ4 frame, or an LZ4 frame of the
four byte planes), then a footer starting ``XETBLOB``. A chunk hash is a keyed blake3 of the
chunk; a xorb hash is the keyed blake3 Merkle aggregate of its (chunk hash, length) pairs.
A shard lists files as segments (xorb hash, chunk range, bytes) plus the file's sha256.
Hashes print as four little-endian 64-bit words in hex, as xet-core prints them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import blake3
import lz4.frame
import numpy as np

# xet-core's public hash keys (merklehash/data_hash.rs): part of the format, like a magic number
DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])  # fmt: skip
INTERNAL_NODE_KEY = bytes([1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63])  # fmt: skip
SHARD_TAG = b"HFRepoMetaData\x00" + bytes([85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])  # fmt: skip
XORB_FOOTER_IDENT = b"XETBLOB"
CHUNK_HEADER = 8
MAX_CHUNK = 1 << 20  # xet-core's largest chunk is 128 KiB; anything near 1 MiB is corrupt
BOOKEND = b"\xff" * 32
ENTRY = 48  # every shard record is 48 bytes
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA_EXT = 1 << 30


class FormatError(ValueError):
    """Bytes that are not a valid xorb or shard (the message says what is wrong)."""


def hash_hex(raw: bytes) -> str:
    """xet-core's printing of a 32-byte hash: four little-endian u64 words in hex."""
    return "".join(f"{w:016x}" for w in struct.unpack("<4Q", raw))


def hash_bytes(hex_hash: str) -> bytes:
    return struct.pack("<4Q", *(int(hex_hash[i : i + 16], 16) for i in range(0, 64, 16)))


def chunk_hash(data: bytes) -> bytes:
    return blake3.blake3(data, key=DATA_KEY).digest()


def _merge(entries: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{hash_hex(h)} : {n}\n" for h, n in entries)
    return blake3.blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(n for _, n in entries)


def _next_cut(entries: list[tuple[bytes, int]], start: int) -> int:
    """How many entries from ``start`` merge into one node (2 to 9; a cut where hash % 4 == 0)."""
    left = len(entries) - start
    if left <= 2:
        return left
    end = min(9, left)
    for i in range(2, end):
        if struct.unpack_from("<Q", entries[start + i][0], 24)[0] % 4 == 0:
            return i + 1
    return end


def aggregated_hash(entries: list[tuple[bytes, int]]) -> bytes:
    """The Merkle aggregate of (hash, length) pairs: a xorb's hash from its chunks."""
    if not entries:
        return b"\0" * 32
    level = list(entries)
    while len(level) > 1:
        merged, i = [], 0
        while i < len(level):
            n = _next_cut(level, i)
            merged.append(_merge(level[i : i + n]))
            i += n
        level = merged
    return level[0][0]


def _bg4_regroup(planes: bytes) -> bytes:
    n = len(planes)
    split, rem = divmod(n, 4)
    src = np.frombuffer(planes, dtype=np.uint8)
    out = np.empty(n, dtype=np.uint8)
    pos = 0
    for k in range(4):
        size = split + (1 if rem > k else 0)
        out[k::4] = src[pos : pos + size]
        pos += size
    return out.tobytes()


@dataclass(frozen=True)
class ChunkHeader:
    offset: int  # of the header within the xorb
    scheme: int
    stored: int  # bytes after the header
    length: int  # uncompressed


def read_chunk_header(raw: bytes, offset: int) -> ChunkHeader | None:
    """The chunk header at ``offset``; None where the footer begins."""
    if len(raw) < CHUNK_HEADER or raw.startswith(XORB_FOOTER_IDENT):
        return None
    version, scheme = raw[0], raw[4]
    stored = int.from_bytes(raw[1:4], "little")
    length = int.from_bytes(raw[5:8], "little")
    if version != 0 or scheme not in (0, 1, 2) or length > MAX_CHUNK or stored > 2 * MAX_CHUNK:
        raise FormatError(f"bad chunk header at byte {offset} (version {version}, scheme {scheme})")
    return ChunkHeader(offset, scheme, stored, length)


def decode_chunk(header: ChunkHeader, stored: bytes) -> bytes:
    if len(stored) != header.stored:
        raise FormatError(f"chunk at byte {header.offset} is truncated")
    try:
        if header.scheme == 0:
            data = stored
        elif header.scheme == 1:
            data = lz4.frame.decompress(stored)
        else:
            data = _bg4_regroup(lz4.frame.decompress(stored))
    except RuntimeError as e:  # lz4 reports corrupt frames as RuntimeError
        raise FormatError(f"chunk at byte {header.offset} does not decompress: {e}") from e
    if len(data) != header.length:
        raise FormatError(f"chunk at byte {header.offset} has {len(data)} bytes, header says {header.length}")
    return data


def iter_chunks(f: BinaryIO, skip: int = 0) -> Iterator[tuple[ChunkHeader, bytes]]:
    """(header, data) of every chunk from the current position; the first ``skip`` are not decoded."""
    index = 0
    while True:
        offset = f.tell()
        header = read_chunk_header(f.read(CHUNK_HEADER), offset)
        if header is None:
            return
        if index < skip:
            f.seek(header.stored, 1)
        else:
            yield header, decode_chunk(header, f.read(header.stored))
        index += 1


def xorb_hash_of(f: BinaryIO) -> tuple[str, int]:
    """The hash of the xorb in ``f`` (read from its start) and its number of chunks."""
    f.seek(0)
    entries = [(chunk_hash(data), len(data)) for _, data in iter_chunks(f)]
    if not entries:
        raise FormatError("xorb has no chunks")
    return hash_hex(aggregated_hash(entries)), len(entries)


@dataclass(frozen=True)
class Segment:
    xorb: str  # hex
    length: int  # uncompressed bytes
    start: int  # chunk index, inclusive
    end: int  # chunk index, exclusive


@dataclass(frozen=True)
class FileInfo:
    file_hash: str
    segments: tuple[Segment, ...]
    sha256: bytes | None  # as stored in the shard (32 bytes), when the client sent it

    @property
    def size(self) -> int:
        return sum(s.length for s in self.segments)

    @property
    def sha256_hex(self) -> str | None:
        """The sha256 the client named: xet-core stores it as four words, so it prints like a hash."""
        return hash_hex(self.sha256) if self.sha256 is not None else None


def parse_shard_files(data: bytes) -> list[FileInfo]:
    """The file records of a shard (its file-info section, up to the bookend)."""
    if len(data) < 48 or data[:32] != SHARD_TAG:
        raise FormatError("not a Xet shard (wrong magic number)")
    offset = 48
    footer_size = struct.unpack_from("<Q", data, 40)[0]
    if 0 < footer_size <= len(data) - 48:
        footer = len(data) - footer_size
        (file_info_offset,) = struct.unpack_from("<Q", data, footer + 8)
        if 48 <= file_info_offset < footer:
            offset = file_info_offset
    files: list[FileInfo] = []
    while True:
        record = _record(data, offset)
        if record[:32] == BOOKEND:
            return files
        flags, count = struct.unpack_from("<II", record, 32)
        offset += ENTRY
        segments = []
        for _ in range(count):
            entry = _record(data, offset)
            _, length, start, end = struct.unpack_from("<IIII", entry, 32)
            if end <= start:
                raise FormatError(f"shard segment at byte {offset} has an empty chunk range")
            segments.append(Segment(hash_hex(entry[:32]), length, start, end))
            offset += ENTRY
        if flags & FLAG_VERIFICATION:
            offset += ENTRY * count
        sha = None
        if flags & FLAG_METADATA_EXT:
            sha = _record(data, offset)[:32]
            offset += ENTRY
        files.append(FileInfo(hash_hex(record[:32]), tuple(segments), sha))


def _record(data: bytes, offset: int) -> bytes:
    record = data[offset : offset + ENTRY]
    if len(record) != ENTRY:
        raise FormatError(f"shard ends inside a record at byte {offset}")
    return record
