"""Streaming release: the build's two ends moved to the Hub.

Hub parents are resolved header-only (``hub/remote_source.py``) and their tensors read by
Range requests (``hub/range_reader.py``); each finished shard is uploaded as an LFS object
and freed (``hub/stream_upload.py``). The engine is the same; the build folder ends with
header-only stubs for the shards, so cards render from it and the publisher's one commit per
repo references objects the server already holds. Peak disk: ``shards_on_disk`` shards' worth
(two, or one per variant past two) plus the small files; the parents' weights never touch the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import RecipeError
from publisher.hub import oidc
from publisher.hub.backoff import our_retries_only
from publisher.hub.range_reader import DEFAULT_READ_AHEAD, RangeSource, remote_inputs
from publisher.hub.remote import Retry, client_settings, make_api, resolve_endpoint, resolve_token
from publisher.merge.io import LocalSource
from publisher.sources import ResolvedModel, file_identity

if TYPE_CHECKING:
    from publisher.hub.stream_upload import HubShardSink
    from publisher.merge.engine import VariantOutput
    from publisher.merge.plan import MergePlan

PARENTS_DIR = ".parents"  # in the work folder: the parents' header-only copies
SMALL_FILES_MARGIN = 300 << 20


@dataclass
class StreamTarget:
    """Where a streaming build reads its Hub parents from and sends its shards to."""

    endpoint: str | None = None
    token: str | None = None
    read_ahead: int = DEFAULT_READ_AHEAD
    retry: Retry = field(default_factory=Retry)
    log: Callable[[str], None] = lambda _msg: None

    def resolved(self) -> tuple[str, str | None]:
        return resolve_endpoint(self.endpoint), resolve_token(self.token)


def shards_on_disk(variants: int) -> int:
    """How many shards' worth of bytes a streaming build may hold: two, or one per variant.

    Every variant fills a shard at once (the engine writes each merged tensor's outputs to all
    variants), and a shard is uploaded only whole (its sha256 names the LFS object), so with N
    variants whose shards end near the same tensor (merged, FP8-dynamic and FP8-block have
    shards of the same size) N nearly full shards are on disk together before any can go: no
    reservation order holds less without keeping a shard in memory or reading the parents twice.
    """
    return max(2, variants)


def disk_needed(shard_bytes: int, planned: int, variants: int) -> int:
    """The most a streaming build holds on disk: ``shards_on_disk`` shards and the small files."""
    return min(planned, shards_on_disk(variants) * shard_bytes) + SMALL_FILES_MARGIN


def input_identities(models: Sequence[ResolvedModel], paths: Sequence[Path]) -> list[str]:
    """What a resumed build must find unchanged: a Hub file by commit and sha256, a local one by stat."""
    out = []
    for p in paths:
        m = next((m for m in models if m.remote is not None and p.is_relative_to(m.path)), None)
        if m is not None and m.remote is not None:  # a header-only copy, rewritten at each run: the commit pins it
            rel = p.relative_to(m.path).as_posix()
            f = m.remote.files[rel]
            out.append(f"{m.remote.repo_id}@{m.remote.commit}/{rel}|{f.size}|{f.sha256}")
        else:
            out.append(file_identity(p))
    return out


def remote_hashes(models: Sequence[ResolvedModel]) -> dict[Path, str]:
    """sha256 of the Hub parents' safetensors from the Hub's LFS metadata (checked as they are read)."""
    out: dict[Path, str] = {}
    for m in models:
        if m.remote is None:
            continue
        for p in m.files.files:
            sha = m.remote.files[p.relative_to(m.path).as_posix()].sha256
            if sha:
                out[p] = sha
    return out


def open_ends(
    plan: MergePlan,
    variants: list[VariantOutput],
    work: Path,
    *,
    shard_bytes: int,
    target: StreamTarget,
    hash_paths: list[Path],
    repo_of: Callable[[VariantOutput], str | None],
) -> tuple[RangeSource, HubShardSink]:
    """The engine's source (Range requests, local parents by pread) and sink (uploads) for this build."""
    from publisher.hub.stream_upload import HubShardSink, Target

    endpoint, token = target.resolved()
    targets = []
    for v in variants:
        repo_id = repo_of(v)
        if repo_id is None:
            raise RecipeError(
                "a streaming build uploads as it goes and needs the repo to publish to",
                where=f"{plan.recipe.path}:1", fix="add `name: namespace/model` to the recipe",
            )
        targets.append(Target(repo_id, v.folder))
    # trusted publishing (GitHub OIDC) first, HF_TOKEN as the fallback: see hub/oidc.py
    api, _ = oidc.scoped_api(make_api(endpoint, token), endpoint, [t.repo_id for t in targets], token, target.log)
    private = plan.recipe.recipe.publish.private
    for t in targets:
        target.retry.call(lambda t=t: api.create_repo(t.repo_id, private=private, exist_ok=True),  # type: ignore[misc]
                          f"creating {t.repo_id}", token)
    source = RangeSource(remote_inputs(plan.models), local=LocalSource(hash_paths), read_ahead=target.read_ahead,
                         retry=target.retry)
    planned = sum(p.nbytes for v in variants for p in v.planned)
    budget = min(planned, shards_on_disk(len(variants)) * shard_bytes)
    sink = HubShardSink(api, token, work, targets, budget=budget, retry=target.retry, log=target.log)
    return source, sink


@contextmanager
def stream_settings(endpoint: str | None) -> Iterator[None]:
    """huggingface_hub settings for a streaming build and its publish: plain LFS uploads, so the
    commit of header-only stubs finds its objects by the LFS batch API (Xet would upload the stubs),
    and one retry layer (ours, bounded) rather than huggingface_hub's inside ours."""
    from huggingface_hub import constants
    from huggingface_hub.utils import logging as hf_logging

    with client_settings(resolve_endpoint(endpoint)), our_retries_only():
        saved, level = constants.HF_HUB_DISABLE_XET, hf_logging.get_verbosity()
        constants.HF_HUB_DISABLE_XET = True
        hf_logging.set_verbosity_error()  # its retry warnings: our retries end in one line of their own
        try:
            yield
        finally:
            constants.HF_HUB_DISABLE_XET = saved
            hf_logging.set_verbosity(level)
