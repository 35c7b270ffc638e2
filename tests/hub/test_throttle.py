"""The local Hub's bandwidth limit (``server/throttle.py``): the bucket's arithmetic on an injected
clock, and the real server taking every byte of a download and an upload from its buckets. No
timing: the clock is frozen and the sleeps are recorded, not slept."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from publisher.hub.server import LocalHub, Settings
from publisher.hub.server.throttle import CHUNK, Limits, TokenBucket

ROOT_DIR = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)


def test_bucket_lends_its_burst_then_charges_debt_in_arrival_order() -> None:
    clock = FakeClock()
    b = TokenBucket(1000, burst=500, clock=clock, sleep=clock.sleep)
    assert b.reserve(500) == 0  # the burst is there from the start
    assert b.reserve(250) == pytest.approx(0.25)  # debt 250 at 1000/s
    assert b.reserve(250) == pytest.approx(0.5)  # a later reservation waits behind the earlier one
    clock.now += 0.5  # the debt is paid
    assert b.reserve(100) == pytest.approx(0.1)
    clock.now += 10  # idle: tokens refill only up to the burst
    assert b.reserve(500) == 0
    assert b.reserve(1) == pytest.approx(0.001)


def test_bucket_take_sleeps_only_when_in_debt() -> None:
    clock = FakeClock()
    b = TokenBucket(100, burst=100, clock=clock, sleep=clock.sleep)
    b.take(100)
    assert clock.slept == []
    b.take(50)
    assert clock.slept == [pytest.approx(0.5)]
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_limits_from_rates() -> None:
    both = Limits.rates(60_000_000, 30_000_000)
    assert both.down is not None and both.down.rate == 60e6 and both.up is not None and both.up.rate == 30e6
    assert Limits.rates(None, None) == Limits()


def _frozen(rate: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst=CHUNK, clock=clock, sleep=clock.sleep), clock


def test_server_downloads_and_uploads_take_every_byte_from_the_buckets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    settings = Settings(multipart_threshold=1 << 20, chunk_size=512 << 10, max_rate_down=10**9, max_rate_up=10**9)
    data = os.urandom(3 * CHUNK + 12345)
    (tmp_path / "w.bin").write_bytes(data)
    with LocalHub(tmp_path / "root", settings=settings) as server:
        assert server.app.limits.down is not None and server.app.limits.up is not None  # from Settings
        down, down_clock = _frozen(1e6)
        up, up_clock = _frozen(1e6)
        server.app.limits = Limits(down, up)  # the same buckets, on a frozen clock
        token = server.create_token("alice", "write")
        api = HfApi(endpoint=server.url, token=token)
        api.create_repo("alice/t")
        api.upload_file(path_or_fileobj=str(tmp_path / "w.bin"), path_in_repo="w.bin", repo_id="alice/t")
        # every request body went through the up bucket: the file's bytes (in parts) and the JSON
        assert max(up_clock.slept) * 1e6 >= len(data) - CHUNK
        got = hf_hub_download("alice/t", "w.bin", endpoint=server.url, token=token, cache_dir=tmp_path / "cache")
        assert hashlib.sha256(Path(got).read_bytes()).digest() == hashlib.sha256(data).digest()
        # the download was sent in CHUNK-sized takes; with a frozen clock each one owes the debt so far
        assert max(down_clock.slept) * 1e6 == pytest.approx(len(data) - CHUNK)


def test_serve_refuses_a_zero_or_unreadable_rate(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR))
    for flag, value in (("--max-rate-up", "0"), ("--max-rate-down", "fast")):
        r = subprocess.run([sys.executable, "-m", "publisher.cli", "hub", "serve", "--root", str(tmp_path / "r"),
                            "--port", "0", flag, value], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and flag in r.stderr and "Traceback" not in r.stderr, r.stderr
