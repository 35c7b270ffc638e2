"""One shard sent as an LFS object part by part, each part's disk freed once the server holds it.

huggingface_hub's ``preupload_lfs_files`` sends a multipart object in one call, so a failed
part means sending the whole object again: the file has to stay whole until the last part is
in. In a streaming release that keeps a shard on disk for its whole upload; under the disk
bound the merge stalls behind it, and each time an upload ends no other shard is whole yet,
so the upload link idles between shards (about a sixth of the time: benchmarks/README.md).
Here each request of the Hub's LFS protocol (the batch, each part's PUT, the completion, the
verify) is tried and retried alone (``Retry``), and a part's bytes are punched out of the file
(``holes.punch``) as soon as its PUT is answered, so the merge can use that room at once.
The requests themselves are huggingface_hub's (``post_lfs_batch_info``, ``http_backoff`` with
its own retries off, ``hf_raise_for_status``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import HubError
from publisher.hub import holes

READ_BLOCK = 4 << 20  # bytes per read while a body is sent: memory stays flat whatever the part size
PARALLEL_PARTS = 5  # parts of one object on the wire at once


@dataclass(frozen=True)
class LfsObject:
    """A finished shard on disk: its LFS identity and the prefix that must survive (its header)."""

    path: Path
    size: int
    sha256: str
    keep: int  # bytes at the start never freed (the safetensors header the card stage reads)


def send(obj: LfsObject, repo_id: str, *, endpoint: str, token: str | None,
         call: Callable[[Callable[[], Any], str], Any], freed: Callable[[int], None]) -> bool:
    """Upload ``obj`` unless the repo holds it; returns whether bytes were sent.

    ``call(fn, what)`` runs one request with the caller's retries. ``freed(n)`` is told each time
    ``n`` more bytes of the file were given back to the filesystem (never the first ``keep``).
    """
    action = _batch(obj, repo_id, endpoint=endpoint, token=token, call=call)
    if not action.get("actions"):
        return False  # the server already holds it for this repo
    upload = action["actions"]["upload"]
    header = upload.get("header") or {}
    href = _fix(upload["href"], endpoint)
    name = obj.path.name
    with obj.path.open("r+b") as f:  # writable: holes are punched through it
        fd = f.fileno()
        if header.get("chunk_size") is None:  # one PUT: the file is freed whole, by the caller, afterwards
            call(lambda: _put(href, fd, 0, obj.size), f"uploading {name} to {repo_id}")
        else:
            etags = _send_parts(obj, fd, header, repo_id, call=call, freed=freed)
            try:
                call(lambda: _post(href, {"oid": obj.sha256, "parts": etags}), f"completing {name} in {repo_id}")
            except Exception:
                # A completion whose answer was lost, tried again, is refused (its parts are gone):
                # the object may be whole on the server all the same.
                if _batch(obj, repo_id, endpoint=endpoint, token=token, call=call).get("actions"):
                    raise
    verify = action["actions"].get("verify")
    if verify:
        from huggingface_hub.utils import build_hf_headers

        call(lambda: _post(_fix(verify["href"], endpoint), {"oid": obj.sha256, "size": obj.size},
                           build_hf_headers(token=token)), f"verifying {name} in {repo_id}")
    return True


def _send_parts(obj: LfsObject, fd: int, header: dict[str, str], repo_id: str, *,
                call: Callable[[Callable[[], Any], str], Any], freed: Callable[[int], None]) -> list[dict[str, Any]]:
    """PUT the parts to their URLs, ``PARALLEL_PARTS`` at a time, freeing each once answered;
    returns the completion's part list. One request at a time would leave the link idle
    between a part's last byte and the next part's first (the answer's round trip)."""
    chunk = int(header["chunk_size"])
    urls = [url for _n, url in sorted((int(k), v) for k, v in header.items() if k.isdigit())]
    if chunk <= 0 or len(urls) != -(-obj.size // chunk):
        raise HubError(f"{repo_id} asked for {len(urls)} parts of {chunk} bytes for {obj.path.name} ({obj.size} bytes)",
                       fix="the server's LFS API is not the Hub's; re-run, or report it")

    def part(i: int) -> dict[str, Any]:
        offset = i * chunk
        length = min(chunk, obj.size - offset)
        response = call(lambda: _put(urls[i], fd, offset, length),
                        f"uploading part {i + 1} of {len(urls)} of {obj.path.name} to {repo_id}")
        etag = response.headers.get("etag")
        if not etag:
            raise HubError(f"{repo_id} sent no ETag for part {i + 1} of {obj.path.name}",
                           fix="the server's LFS API is not the Hub's; re-run, or report it")
        n = holes.punch(fd, max(offset, obj.keep), offset + length)  # the header's blocks are kept
        if n:
            freed(n)
        return {"partNumber": i + 1, "etag": etag}

    pool = ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="lfs-part")
    try:
        futures = [pool.submit(part, i) for i in range(len(urls))]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after a failure: the parts not started never are


def held(repo_id: str, objects: Sequence[tuple[str, int]], *, endpoint: str, token: str | None,
         call: Callable[[Callable[[], Any], str], Any]) -> set[str]:
    """The sha256s among ``objects`` (sha256, size) whose LFS object the repo already holds."""
    actions, _errors = _ask(repo_id, objects, endpoint=endpoint, token=token, call=call,
                            what=f"checking uploads in {repo_id}")
    return {a["oid"] for a in actions if not a.get("actions")}


def _ask(repo_id: str, objects: Sequence[tuple[str, int]], *, endpoint: str, token: str | None,
         call: Callable[[Callable[[], Any], str], Any], what: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The LFS batch API's answer for ``objects``: (actions, errors)."""
    from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info

    infos = [UploadInfo(size=size, sample=b"", sha256=bytes.fromhex(sha)) for sha, size in objects]
    actions, errors, _ = call(
        lambda: post_lfs_batch_info(upload_infos=infos, token=token, repo_type="model", repo_id=repo_id,
                                    endpoint=endpoint),
        what)
    return actions, errors


def _batch(obj: LfsObject, repo_id: str, *, endpoint: str, token: str | None,
           call: Callable[[Callable[[], Any], str], Any]) -> dict[str, Any]:
    actions, errors = _ask(repo_id, [(obj.sha256, obj.size)], endpoint=endpoint, token=token, call=call,
                           what=f"asking {repo_id} where to upload {obj.path.name}")
    for err in errors:
        message = (err.get("error") or {}).get("message", "refused")
        raise HubError(f"{repo_id} refused the upload of {obj.path.name}: {message}",
                       fix="check the token's write access to the repo and re-run")
    for a in actions:
        if a.get("oid") == obj.sha256:
            return dict(a)
    raise HubError(f"{repo_id}'s LFS batch answer does not name {obj.path.name} ({obj.sha256})",
                   fix="the server's LFS API is not the Hub's; re-run, or report it")


def _fix(url: str, endpoint: str) -> str:
    from huggingface_hub.utils import fix_hf_endpoint_in_url

    return str(fix_hf_endpoint_in_url(url, endpoint=endpoint))


def _body(fd: int, offset: int, length: int) -> Iterator[bytes]:
    end = offset + length
    while offset < end:
        block = os.pread(fd, min(READ_BLOCK, end - offset), offset)
        if not block:
            raise OSError(f"the file ended at byte {offset} of {end}")
        offset += len(block)
        yield block


def _put(url: str, fd: int, offset: int, length: int) -> Any:
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    response = http_backoff("PUT", url, content=_body(fd, offset, length), headers={"Content-Length": str(length)},
                            max_retries=0)
    hf_raise_for_status(response)
    return response


def _post(url: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from huggingface_hub.lfs import LFS_HEADERS
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    response = http_backoff("POST", url, json=payload, headers={**LFS_HEADERS, **(headers or {})}, max_retries=0)
    hf_raise_for_status(response)
    return response
