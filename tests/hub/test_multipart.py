"""Multipart LFS uploads assembled in place (``server/multipart.py``): the digest is right whether
parts come in order (hashed as they arrive), out of order, or again with other bytes (read back)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from publisher.hub.server.multipart import Assembler

PART = 1000


def _parts(data: bytes) -> list[bytearray]:
    return [bytearray(data[i : i + PART]) for i in range(0, len(data), PART)]


def test_parts_in_order_give_the_object_and_its_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * PART + 17)
    a = Assembler(tmp_path)
    for n, part in enumerate(_parts(data), 1):
        a.write_part("ab12", n, (n - 1) * PART, part)
    assert a.missing("ab12", 4) == []
    path, digest = a.assembled("ab12", 4)
    assert path.read_bytes() == data and digest == hashlib.sha256(data).hexdigest()
    a.discard("ab12")
    assert not a.folder("ab12").exists()


def test_out_of_order_missing_and_resent_parts(tmp_path: Path) -> None:
    data = os.urandom(3 * PART)
    a = Assembler(tmp_path)
    parts = _parts(data)
    for n in (3, 1):
        a.write_part("cd", n, (n - 1) * PART, parts[n - 1])
    assert a.missing("cd", 3) == [2]
    a.write_part("cd", 2, PART, parts[1])
    assert a.assembled("cd", 3)[1] == hashlib.sha256(data).hexdigest()

    b = Assembler(tmp_path / "b")
    for n, part in enumerate(parts, 1):
        b.write_part("ef", n, (n - 1) * PART, part)
    other = bytearray(os.urandom(PART))
    b.write_part("ef", 2, PART, other)  # sent again, other bytes: the digest must be of what is on disk
    path, digest = b.assembled("ef", 3)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data[:PART] + other + data[2 * PART :]).hexdigest()


def test_parts_finished_early_are_hashed_when_their_turn_comes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few parts on the wire at once finish out of order: caught up part by part, never read back whole."""
    data = os.urandom(5 * PART + 3)
    a = Assembler(tmp_path)
    parts = _parts(data)
    for n in (2, 3, 1, 6, 5, 4):  # 2 and 3 wait for 1; 6 and 5 for 4
        a.write_part("gh", n, (n - 1) * PART, parts[n - 1])
    real_open = open
    reads: list[str] = []

    def spy(path: object, *args: object, **kwargs: object) -> object:
        reads.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", spy)
    _path, digest = a.assembled("gh", 6)
    assert reads == [] and digest == hashlib.sha256(data).hexdigest()  # ready: the object was not read again
