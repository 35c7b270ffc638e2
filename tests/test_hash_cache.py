"""The remembered sha256 of parent files: never stale, never spliced by builds running at once.

A manifest's input hashes may come from this cache; a stale entry would put a wrong sha256 in
the version's identity (a rebuild elsewhere would then differ by that hash).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from publisher import sources
from publisher.sources import known_hashes, remember_hashes


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "sha256.json"
    monkeypatch.setattr(sources, "HASH_CACHE", path)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_file_changed_in_place_with_its_size_and_mtime_kept_is_hashed_again(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"a" * 64)
    remember_hashes({f: _sha(b"a" * 64)})
    assert known_hashes([f]) == {}  # written just now: a change in the same clock tick would not show
    monkeypatch.setattr(sources, "RACY_SECONDS", -1.0)  # from here on, every file counts as settled
    remember_hashes({f: _sha(b"a" * 64)})
    assert known_hashes([f]) == {f: _sha(b"a" * 64)}
    st = f.stat()
    with f.open("r+b") as w:  # same inode, same size
        w.write(b"b" * 64)
    for _ in range(1_000_000):  # mtime set back, as a copy keeping timestamps does; wait for the ctime to move
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        if f.stat().st_ctime_ns != st.st_ctime_ns:
            break
    assert (f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert known_hashes([f]) == {}


def test_builds_remembering_at_once_keep_every_entry(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "RACY_SECONDS", -1.0)
    files = []
    for i in range(40):
        f = tmp_path / f"f{i:02d}.safetensors"
        f.write_bytes(bytes([i]) * (100 + i))
        files.append(f)
    threads = [threading.Thread(target=remember_hashes, args=({f: _sha(f.read_bytes())},)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert known_hashes(files) == {f: _sha(f.read_bytes()) for f in files}
    assert [p.name for p in cache.parent.iterdir() if p.name not in ("sha256.json", "sha256.lock")] == []
