"""A Hub parent without its weights: pinned commit, LFS metadata, and a header-only copy.

``publisher plan`` needs a parent's config, tokenizer and card files and each safetensors
file's header, never its weights; a streaming build reads the weights later by Range
requests (``hub/range_reader.py``) from the very commit pinned here. The copy is a folder
laid out like a snapshot: small files whole, and each ``*.safetensors`` as its real header
followed by a sparse hole up to its true size, so ``ModelFiles.open`` (and every planning
check built on it) reads it like the real thing while no weight byte crosses the network.
The files' sha256 come from the Hub's LFS metadata, so the manifest pins them too.
"""

from __future__ import annotations

import fnmatch
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import SourceError
from publisher.hub.ranged import RangeClient, TooLarge, read_prefix, write_header_copy
from publisher.hub.reach import Unreachable, unreachable_parent
from publisher.hub.remote import (
    Retry,
    describe,
    is_loopback,
    loopback_online,
    resolve_endpoint,
    resolve_token,
)
from publisher.tensors import MAX_HEADER_BYTES, require_hub_safetensors

OFFLINE_FIX = "unset HF_HUB_OFFLINE, point HF_ENDPOINT at a reachable Hub (`publisher hub serve` runs one locally)"

if TYPE_CHECKING:
    import httpx2

SMALL_FILE_LIMIT = 64 << 20  # configs, tokenizer, card: never more than this
HEADER_ONLY_MARK = ".header-only"
# The small files of a parent (configs, tokenizer, card): read whole, by every kind of source.
SMALL_PATTERNS = (
    "*.json",
    "tokenizer*",
    "*.model",
    "*.tiktoken",
    "vocab.*",
    "merges.txt",
    "*.jinja",
    "README.md",
)


@dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repo
    size: int
    sha256: str | None  # the LFS oid; None for a file stored in git


@dataclass(frozen=True)
class RemoteParent:
    """Where a parent's bytes live: enough to read any of them later by Range requests."""

    repo_id: str
    commit: str
    endpoint: str
    token: str | None
    files: dict[str, RemoteFile]

    def url(self, path: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, path, revision=self.commit, endpoint=self.endpoint)


def session() -> httpx2.Client:
    from huggingface_hub.utils import get_session

    return get_session()


def request_headers(token: str | None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return dict(build_hf_headers(token=token or False, library_name="publisher"))


def read_range(url: str, headers: dict[str, str], start: int, length: int) -> bytes:
    """Exactly ``length`` bytes at ``start`` (redirects followed); a short or ignored range is an error."""
    buf = bytearray(length)
    client = RangeClient()
    try:
        client.read_into(url, headers, start, length, [memoryview(buf)])
    finally:
        client.close()
    return bytes(buf)


def wanted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return "/" not in path and any(fnmatch.fnmatch(name, p) for p in SMALL_PATTERNS)


def fetch_parent(
    repo_id: str,
    revision: str | None,
    dest: Path,
    *,
    where: str,
    endpoint: str | None = None,
    token: str | None = None,
    retry: Retry | None = None,
) -> tuple[RemoteParent, Path]:
    """Pin ``repo_id``@``revision`` to a commit and write its header-only copy under ``dest``."""
    endpoint = resolve_endpoint(endpoint)
    token = resolve_token(token)
    retry = retry or Retry()
    with hub_errors(repo_id, revision, where, endpoint, token), loopback_online(endpoint):
        parent = _pin(repo_id, revision, endpoint, token, retry, where)
        folder = dest / repo_id.replace("/", "--") / parent.commit
        folder.mkdir(parents=True, exist_ok=True)
        client, headers = session(), request_headers(token)

        def one(f: RemoteFile) -> None:
            target = folder / f.path
            if f.path.endswith(".safetensors"):
                _header_copy(parent, headers, f, target, retry)
            else:
                data = retry.call(lambda: _small(client, parent, headers, f), f"reading {repo_id}/{f.path}", token)
                target.write_bytes(data)

        todo = [f for f in parent.files.values() if "/" not in f.path and (f.path.endswith(".safetensors") or wanted(f.path))]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="headers") as pool:
            list(pool.map(one, todo))
        (folder / HEADER_ONLY_MARK).write_text(f"{repo_id}@{parent.commit}: weights are sparse holes, read by Range requests\n")
    return parent, folder


def _pin(repo_id: str, revision: str | None, endpoint: str, token: str | None, retry: Retry, where: str) -> RemoteParent:
    from publisher.hub.remote import make_api

    api = make_api(endpoint, token)
    info = retry.call(
        lambda: api.model_info(repo_id, revision=revision, files_metadata=True), f"reading {repo_id}", token
    )
    files = {
        s.rfilename: RemoteFile(s.rfilename, int(s.size or 0), s.lfs.sha256 if s.lfs else None)
        for s in (info.siblings or [])
    }
    require_hub_safetensors(repo_id, files, where)
    return RemoteParent(repo_id, str(info.sha), endpoint, token, files)


def _small(client: Any, parent: RemoteParent, headers: dict[str, str], f: RemoteFile) -> bytes:
    try:
        data, _ = read_prefix(client, parent.endpoint, headers, parent.repo_id, f.path, parent.commit, SMALL_FILE_LIMIT, ranged=False)
    except TooLarge as e:
        raise SourceError(f"{f.path} is {e.size} bytes, too large for a config or tokenizer file", where=parent.repo_id) from None
    return data


def _header_copy(parent: RemoteParent, headers: dict[str, str], f: RemoteFile, target: Path, retry: Retry) -> None:
    """The 8-byte length, then exactly the header: the server sends nothing of the tensors."""
    url, what = parent.url(f.path), f"reading the header of {parent.repo_id}/{f.path}"
    if f.size < 8:
        raise SourceError(f"{f.path} is {f.size} bytes, too short for a safetensors header", where=parent.repo_id)
    prefix = retry.call(lambda: read_range(url, headers, 0, 8), what, parent.token)
    (n,) = struct.unpack("<Q", prefix)
    if n > MAX_HEADER_BYTES or 8 + n > f.size:
        raise SourceError(
            f"{f.path}: header length {n} does not fit in a {f.size}-byte file", where=parent.repo_id,
            fix="the file is not safetensors or is truncated on the Hub",
        )
    header = retry.call(lambda: read_range(url, headers, 8, n), what, parent.token)
    write_header_copy(target, prefix + header, f.size)


class RepoNotFound(SourceError):
    """The Hub has no such repo (or none this token may see); ``offline``: none is cached and
    HF_HUB_OFFLINE forbids asking. ``sources.resolve`` adds the folder it looked for first."""

    def __init__(self, repo_id: str, endpoint: str, where: str, *, offline: bool = False) -> None:
        self.repo_id = repo_id
        self.endpoint = endpoint
        self.offline = offline
        if offline:
            super().__init__(f"{repo_id} is not in the local cache (HF_HUB_OFFLINE=1)", where=where,
                             fix=f"{OFFLINE_FIX}, or use a local folder")
        else:
            super().__init__(f"repo {repo_id} not found at {endpoint}", where=where,
                             fix="check the repo id, HF_ENDPOINT and HF_TOKEN (private repos need a token)")


@contextmanager
def hub_errors(repo_id: str, revision: str | None, where: str, endpoint: str, token: str | None) -> Iterator[None]:
    """huggingface_hub and transport errors as one SourceError line naming the repo."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except RevisionNotFoundError as e:
        raise SourceError(f"revision '{revision}' of {repo_id} not found", where=where) from e
    except RepositoryNotFoundError as e:
        raise RepoNotFound(repo_id, endpoint, where) from e
    except OfflineModeIsEnabled:
        raise SourceError(
            f"HF_HUB_OFFLINE is set: cannot read {repo_id} from {endpoint}",
            where=where, fix="unset HF_HUB_OFFLINE, set HF_ENDPOINT to a local Hub (`publisher hub serve`), or use a local folder",
            exit_code=1,
        ) from None
    except HfHubHTTPError as e:
        raise SourceError(f"cannot read {repo_id} from {endpoint}: {describe(e, token)}", where=where, exit_code=1) from None
    except Unreachable as e:
        raise unreachable_parent(e, repo_id, where) from None
    except SourceError:
        raise
    except Exception as e:
        if type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2") or isinstance(e, OSError):
            hint = "is the server running?" if is_loopback(endpoint) else "check HF_ENDPOINT and the network"
            raise SourceError(
                f"cannot reach {endpoint} to read {repo_id} ({type(e).__name__}: {describe(e, token)})",
                where=where,
                fix=f"{hint}, or use a local folder",
                exit_code=1,
            ) from None
        raise

