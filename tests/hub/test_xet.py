"""The default client (hf_xet installed, HF_HUB_DISABLE_XET unset) uploads and downloads.

huggingface_hub reads HF_HUB_DISABLE_XET at import and the suite sets it, so the client runs
in a subprocess whose environment drops it: ``upload_file`` (path and bytes), ``upload_folder``,
``hf upload`` and ``hf download``, byte-exact round trips, and the server's request counts
prove the Xet routes carried the bytes (no classic LFS batch at all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import numpy as np

from publisher.hub.server import LocalHub
from publisher.hub.server.xet_format import aggregated_hash, chunk_hash, hash_bytes, hash_hex
from tests.hub.helpers import Hub

ROOT_DIR = Path(__file__).resolve().parents[2]
CLIENT = r"""
import json, os, subprocess, sys
from pathlib import Path
from huggingface_hub import HfApi, constants, snapshot_download
url, token, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
assert not constants.HF_HUB_DISABLE_XET
import hf_xet  # the default install has it
api = HfApi(endpoint=url, token=token)
folder = work / "folder"
out = {}
api.create_repo("alice/xet-file")
api.upload_file(path_or_fileobj=str(folder / "weights.bin"), path_in_repo="weights.bin", repo_id="alice/xet-file")
api.upload_file(path_or_fileobj=(folder / "floats.npy").read_bytes(), path_in_repo="floats.npy", repo_id="alice/xet-file")
api.create_repo("alice/xet-folder")
api.upload_folder(folder_path=str(folder), repo_id="alice/xet-folder")
env = dict(os.environ, HF_ENDPOINT=url, HF_TOKEN=token)
hf = str(Path(sys.executable).with_name("hf"))
api.create_repo("alice/xet-cli")
up = subprocess.run([hf, "upload", "alice/xet-cli", str(folder / "sub" / "partly-known.bin"), "cli/partly-known.bin"],
                    env=env, capture_output=True, text=True, timeout=300)
out["upload"] = [up.returncode, up.stderr[-2000:]]
down = subprocess.run([hf, "download", "alice/xet-cli", "--local-dir", str(work / "cli-download")],
                      env=env, capture_output=True, text=True, timeout=300)
out["download"] = [down.returncode, down.stderr[-2000:]]
out["file"] = snapshot_download("alice/xet-file", endpoint=url, token=token, cache_dir=str(work / "cache"))
out["folder"] = snapshot_download("alice/xet-folder", endpoint=url, token=token, cache_dir=str(work / "cache"))
print(json.dumps(out))
"""


def _client_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE")}
    env.update(PYTHONPATH=str(ROOT_DIR), HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_PROGRESS_BARS="1")
    return env


def _folder(root: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    weights = rng.bytes(12 << 20)
    files = {
        "weights.bin": weights,  # incompressible: raw chunks, several xorb segments
        "floats.npy": rng.normal(0, 0.02, 1 << 20).astype(np.float32).tobytes(),  # byte planes compress
        "text.bin": b"local hub " * 300_000,  # LZ4
        "sub/partly-known.bin": weights[: 5 << 20] + rng.bytes(1 << 20),  # dedups against weights.bin
        "small.txt": b"a regular file\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _read(folder: Path, rels: list[str]) -> dict[str, bytes]:
    return {rel: (folder / rel).read_bytes() for rel in rels}


def test_default_client_uploads_and_downloads_through_xet(hub: Hub, tmp_path: Path) -> None:
    files = _folder(tmp_path / "folder")
    run = subprocess.run([sys.executable, "-c", CLIENT, hub.url, hub.token, str(tmp_path)], env=_client_env(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["upload"][0] == 0, out["upload"][1]
    assert out["download"][0] == 0, out["download"][1]

    assert _read(Path(out["file"]), ["weights.bin", "floats.npy"]) == {k: files[k] for k in ("weights.bin", "floats.npy")}
    assert _read(Path(out["folder"]), list(files)) == files
    assert _read(tmp_path / "cli-download", ["cli/partly-known.bin"]) == {"cli/partly-known.bin": files["sub/partly-known.bin"]}

    stats = {k.split(" ", 1)[1]: v for k, v in hub.server.app.stats.items()}
    assert stats.get("/api/{rtype}/{ns}/{name}/xet-write-token/{rev}", 0) >= 3
    assert stats.get("/xet-cas/{inst}/v1/xorbs/{prefix}/{hash}", 0) >= 2
    assert stats.get("/xet-cas/{inst}/v1/shards", 0) >= 3
    assert not any("lfs/objects/batch" in k for k in stats), stats  # no classic LFS upload happened
    info = hub.api().model_info("alice/xet-folder", files_metadata=True)
    lfs = {s.rfilename: s.lfs for s in info.siblings or []}
    assert lfs["weights.bin"] is not None and lfs["weights.bin"].size == len(files["weights.bin"])
    assert lfs["small.txt"] is None


def _xorb(chunks: list[bytes]) -> tuple[str, bytes]:
    body = b"".join(bytes([0]) + len(c).to_bytes(3, "little") + bytes([0]) + len(c).to_bytes(3, "little") + c for c in chunks)
    return hash_hex(aggregated_hash([(chunk_hash(c), len(c)) for c in chunks])), body


def _cas(hub: Hub, token: str | None = None) -> tuple[str, dict[str, str]]:
    hub.api().create_repo("alice/cas", exist_ok=True)
    r = httpx.get(f"{hub.url}/api/models/alice/cas/xet-write-token/main", headers={"Authorization": f"Bearer {token or hub.token}"})
    r.raise_for_status()
    body = r.json()
    assert r.headers["X-Xet-Cas-Url"] == body["casUrl"] and int(r.headers["X-Xet-Token-Expiration"]) == body["exp"]
    return body["casUrl"], {"Authorization": f"Bearer {body['accessToken']}"}


def test_cas_checks_hashes_tokens_and_references(hub: Hub) -> None:
    cas, auth = _cas(hub)
    good, body = _xorb([b"a" * 1000, b"b" * 2000])
    assert httpx.post(f"{cas}/v1/xorbs/default/{'0' * 64}", content=body, headers=auth).status_code == 400
    assert httpx.post(f"{cas}/v1/xorbs/default/{good}", content=body).status_code == 401
    assert httpx.post(f"{cas}/v1/xorbs/default/{good}", content=body[:-5], headers=auth).status_code == 400
    r = httpx.post(f"{cas}/v1/xorbs/default/{good}", content=body, headers=auth)
    assert r.status_code == 200 and r.json() == {"was_inserted": True}
    assert httpx.post(f"{cas}/v1/xorbs/default/{good}", content=body, headers=auth).json() == {"was_inserted": False}
    assert httpx.post(f"{cas}/v2/shards", content=b"x", headers=auth).status_code == 404  # the client falls back to v1
    r = httpx.post(f"{cas}/v1/shards", content=b"not a shard", headers=auth)
    assert r.status_code == 400 and "shard" in r.json()["error"]
    # a Hub token is not a CAS token, and a read token gets no write token
    assert httpx.post(f"{cas}/v1/shards", content=b"", headers={"Authorization": f"Bearer {hub.token}"}).status_code == 401
    reader = hub.server.create_token("alice", "read")
    r = httpx.get(f"{hub.url}/api/models/alice/cas/xet-write-token/main", headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403
    mallory = hub.server.create_token("mallory")
    r = httpx.get(f"{hub.url}/api/models/alice/cas/xet-write-token/main", headers={"Authorization": f"Bearer {mallory}"})
    assert r.status_code == 403


def test_cas_url_of_another_root_is_refused(hub: Hub, tmp_path: Path) -> None:
    cas, auth = _cas(hub)
    with LocalHub(tmp_path / "other-root") as other:
        foreign = cas.replace(hub.url, other.url)
        r = httpx.post(f"{foreign}/v1/shards", content=b"", headers=auth)
        assert r.status_code == 404 and "another local Hub root" in r.json()["error"]


def _shard(xorb: str, length: int, chunks: int, sha256: bytes) -> bytes:
    from publisher.hub.server.xet_format import BOOKEND, FLAG_METADATA_EXT, SHARD_TAG

    out = SHARD_TAG + (2).to_bytes(8, "little") + (0).to_bytes(8, "little")
    out += b"\x11" * 32 + FLAG_METADATA_EXT.to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(8)
    out += hash_bytes(xorb) + bytes(4) + length.to_bytes(4, "little") + (0).to_bytes(4, "little") + chunks.to_bytes(4, "little")
    out += sha256 + bytes(16)
    return out + BOOKEND + bytes(16)


def test_shard_rebuilds_files_from_stored_xorbs_only(hub: Hub) -> None:
    import hashlib

    cas, auth = _cas(hub)
    chunks = [b"x" * 3000, b"y" * 1000]
    content = b"".join(chunks)
    oid = hashlib.sha256(content).hexdigest()
    name, body = _xorb(chunks)
    r = httpx.post(f"{cas}/v1/shards", content=_shard(name, len(content), 2, hash_bytes(oid)), headers=auth)
    assert r.status_code == 400 and "does not have" in r.json()["error"]
    assert httpx.post(f"{cas}/v1/xorbs/default/{name}", content=body, headers=auth).status_code == 200
    r = httpx.post(f"{cas}/v1/shards", content=_shard(name, len(content), 2, bytes(32)), headers=auth)
    assert r.status_code == 400 and "sha256" in r.json()["error"]  # the bytes do not match the named sha256
    r = httpx.post(f"{cas}/v1/shards", content=_shard(name, len(content) + 1, 2, hash_bytes(oid)), headers=auth)
    assert r.status_code == 400  # the segment's length is not the chunks'
    repo = hub.server.app.store.get(hub.server.app.key("model", "alice", "cas"))
    assert repo is not None and repo.lfs.linked_size(repo.path, oid) is None
    r = httpx.post(f"{cas}/v1/shards", content=_shard(name, len(content), 2, hash_bytes(oid)), headers=auth)
    assert r.status_code == 200, r.text
    assert repo.lfs.linked_size(repo.path, oid) == len(content)
