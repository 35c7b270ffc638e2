"""Reading published model repos from a Hub endpoint for the catalog, without downloading weights.

Per repo: its refs (``v*`` tags are the versions), main's history (the tags' dates), the
card and ``recipe.yaml`` at main, and the facts at the newest version: ``config.json``,
the safetensors index, and of each shard only its header, fetched with HTTP ``Range``
requests on the resolve URL. The headers are written into a *header-only mirror* (each
shard is its real header followed by a sparse hole up to the shard's true size), so the
very code that states a build's facts (``publisher.card.model_facts``) reads the published
repo, offsets checked against real sizes, while nothing but a few kilobytes is transferred.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from publisher.card.facts import model_facts
from publisher.card.fetchers import FetchError
from publisher.catalog.records import (
    VERSION_TAG,
    RepoRecord,
    Skipped,
    SkipRepo,
    served_context,
    sort_versions,
)
from publisher.catalog.schema import Version
from publisher.errors import CatalogError, HubError, PublisherError
from publisher.hub.ranged import TooLarge, read_prefix, safetensors_header, write_header_copy
from publisher.hub.remote import Retry, describe, is_loopback, make_api
from publisher.tensors import INDEX_FILE

if TYPE_CHECKING:
    import httpx2
    from huggingface_hub import HfApi

T = TypeVar("T")
README = "README.md"
RECIPE = "recipe.yaml"
CONFIG = "config.json"
SMALL_FILE_LIMIT = 16 << 20  # config, index, card, recipe: never more than this is read


class HubReader:
    """One endpoint's repos through huggingface_hub (HfApi and its HTTP session)."""

    def __init__(self, endpoint: str, token: str | None, retry: Retry) -> None:
        from huggingface_hub.utils import build_hf_headers, get_session

        self.endpoint = endpoint
        self.token = token
        self.retry = retry
        self.api: HfApi = make_api(endpoint, token)
        self.session: httpx2.Client = get_session()
        self.headers: dict[str, str] = build_hf_headers(token=token or False, library_name="publisher")
        self._memo: dict[tuple[str, str, str], str | None] = {}

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return self.retry.call(fn, what, self.token)

    # ------------------------------------------------------------------ listing
    def probe(self) -> None:
        """One plain request first: a refused connection or an unknown host fails at once.

        (huggingface_hub's listing retries connection errors for ~20 s; that is for flaky
        networks, not for a wrong --endpoint.)
        """
        import httpx2
        from huggingface_hub.utils import hf_raise_for_status

        try:
            r = self.session.get(f"{self.endpoint}/api/models", params={"limit": 1}, headers=self.headers, timeout=30)
        except httpx2.ConnectError as e:
            raise CatalogError(
                f"cannot reach {self.endpoint} ({describe(e, self.token)})",
                fix="check --endpoint (or HF_ENDPOINT) and that the server is up",
            ) from None
        if r.status_code >= 500 or r.status_code == 429:
            return  # transient: the listing's own retries deal with it
        hf_raise_for_status(r)

    def repo_ids(self, authors: Iterable[str] = ()) -> list[str]:
        """Every model repo of the endpoint (or of the given namespaces), sorted."""
        self.probe()
        found: set[str] = set()
        wanted: list[str | None] = [*authors] or [None]
        for author in wanted:
            models = self._call(lambda a=author: list(self.api.list_models(author=a)), "listing models")  # type: ignore[misc]
            found.update(m.id for m in models)
        return sorted(found, key=str.casefold)

    # ------------------------------------------------------------------ small files
    def text(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        """A small file's text; ``None`` when the repo has no such file. Raises FetchError."""
        key = (repo_id.casefold(), filename, revision or "main")
        if key not in self._memo:
            self._memo[key] = self._text(repo_id, filename, revision or "main")
        return self._memo[key]

    def _text(self, repo_id: str, filename: str, revision: str) -> str | None:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            data, _total = self._call(
                lambda: self._read(repo_id, filename, revision, SMALL_FILE_LIMIT, ranged=False),
                f"reading {repo_id}/{filename}",
            )
        except EntryNotFoundError:
            return None
        except GatedRepoError as e:
            raise FetchError(f"{repo_id} is gated (set HF_TOKEN with access)") from e
        except RepositoryNotFoundError as e:
            raise FetchError(f"{repo_id} does not exist or is private") from e
        except RevisionNotFoundError as e:
            raise FetchError(f"revision {revision} of {repo_id} does not exist") from e
        except (HfHubHTTPError, HubError, OSError) as e:
            raise FetchError(f"{repo_id}/{filename}: {describe(e, self.token)}") from e
        except Exception as e:
            if _is_transport(e):
                raise FetchError(f"{repo_id}/{filename}: {describe(e, self.token)}") from e
            raise
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise FetchError(f"{repo_id}/{filename} is not UTF-8 text") from e

    def _read(self, repo_id: str, filename: str, revision: str, limit: int, *, ranged: bool) -> tuple[bytes, int]:
        try:
            return read_prefix(
                self.session, self.endpoint, self.headers, repo_id, filename, revision, limit, ranged=ranged
            )
        except TooLarge as e:
            raise FetchError(f"{repo_id}/{filename} is {e.size} bytes, more than a catalog reads") from None

    # ------------------------------------------------------------------ one repo
    def record(self, repo_id: str, include_untagged: bool, scratch: Path) -> RepoRecord:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = self._call(lambda: self.api.list_repo_refs(repo_id), f"reading refs of {repo_id}")
        except RepositoryNotFoundError:
            raise SkipRepo("listed but not readable (private or deleted)") from None
        main = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        if main is None:
            raise SkipRepo("no main branch")
        tags = {t.name: t.target_commit for t in refs.tags if VERSION_TAG.match(t.name)}
        if not tags and not include_untagged:
            raise SkipRepo("no version tag (v*)", problem=False)
        dates = self._commit_dates(repo_id, main)
        versions = []
        for tag, commit in tags.items():
            when = dates.get(commit)
            if when is None:  # a tag off main's history
                first = self._call(lambda t=tag: self.api.list_repo_commits(repo_id, revision=t)[0],  # type: ignore[misc]
                                   f"reading {repo_id}@{tag}")
                when = first.created_at
            m = VERSION_TAG.match(tag)
            assert m is not None
            versions.append(Version(version=m.group(1), tag=tag, commit=commit, date=when))
        versions = sort_versions(versions)
        facts_at = versions[0].commit if versions and versions[0].commit else main
        try:
            card = self.text(repo_id, README, main)
            recipe = self.text(repo_id, RECIPE, main)
        except FetchError as e:
            raise SkipRepo(str(e)) from None
        if card is None:
            raise SkipRepo("no model card (README.md)")
        folder = scratch / repo_id.replace("/", "--")
        try:
            self.header_mirror(repo_id, facts_at, folder)
            facts = model_facts(folder, context_length=served_context(recipe))
        except FetchError as e:
            raise SkipRepo(str(e)) from None
        except PublisherError as e:
            raise SkipRepo(f"its weights cannot be described ({e.what})") from None
        return RepoRecord(
            repo_id=repo_id,
            card_text=card,
            facts=facts,
            versions=versions,
            revision=main,
            source=f"{self.endpoint}/{repo_id}",
            extra_files={RECIPE: recipe},
        )

    def _commit_dates(self, repo_id: str, head: str) -> dict[str, datetime]:
        commits = self._call(lambda: self.api.list_repo_commits(repo_id, revision=head), f"reading {repo_id} history")
        return {c.commit_id: c.created_at for c in commits}

    def header_mirror(self, repo_id: str, revision: str, folder: Path) -> None:
        """config.json, the index, and every shard as its real header + a sparse hole."""
        entries = self._call(
            lambda: list(self.api.list_repo_tree(repo_id, revision=revision)), f"listing files of {repo_id}"
        )
        names = {e.path for e in entries if getattr(e, "size", None) is not None}
        folder.mkdir(parents=True, exist_ok=True)
        config = self.text(repo_id, CONFIG, revision)
        if config is None:
            raise FetchError("no config.json")
        (folder / CONFIG).write_text(config, encoding="utf-8")
        if INDEX_FILE in names:
            index = self.text(repo_id, INDEX_FILE, revision)
            (folder / INDEX_FILE).write_text(index or "", encoding="utf-8")
            shards = _index_shards(index or "")
        else:
            shards = sorted(n for n in names if n.endswith(".safetensors") and "/" not in n)
        if not shards:
            raise FetchError("no *.safetensors files")
        for name in shards:
            if "/" in name or name.startswith(".") or name not in names:
                continue  # ModelFiles reports what the index names but the repo lacks
            self._mirror_shard(repo_id, revision, name, folder / name)

    def _mirror_shard(self, repo_id: str, revision: str, name: str, path: Path) -> None:
        what = f"reading the header of {repo_id}/{name}"

        def read(limit: int) -> tuple[bytes, int]:
            return self._call(lambda: self._read(repo_id, name, revision, limit, ranged=True), what)

        try:
            header, total = safetensors_header(read, name)
        except ValueError as e:
            raise FetchError(str(e)) from None
        write_header_copy(path, header, total)

def _index_shards(text: str) -> list[str]:
    import json

    try:
        data = json.loads(text)
        return sorted(set(data["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # ModelFiles.open reports the bad index with its path


def _is_transport(err: BaseException) -> bool:
    return type(err).__module__.startswith(("httpx", "httpcore")) or isinstance(err, ConnectionError | TimeoutError)


# ---------------------------------------------------------------------- the whole endpoint


def check_offline(endpoint: str) -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE and not is_loopback(endpoint):
        raise CatalogError(
            f"HF_HUB_OFFLINE is set: cannot read {endpoint}",
            fix="unset HF_HUB_OFFLINE, or build the catalog from local builds with --builds DIR",
        )


def read_endpoint(
    endpoint: str,
    *,
    token: str | None,
    authors: Iterable[str] = (),
    include_untagged: bool = False,
    retry: Retry | None = None,
    threads: int = 8,
    progress: Callable[[str], None] | None = None,
) -> tuple[HubReader, list[RepoRecord], list[Skipped]]:
    """Every listable repo of the endpoint: (the reader, for lineage reads; records; skips).

    Call inside ``loopback_online(endpoint)`` (after ``check_offline``) so a local Hub is
    reachable under ``HF_HUB_OFFLINE``.
    """
    reader = HubReader(endpoint, token, retry or Retry())
    try:
        repo_ids = reader.repo_ids(authors)
    except CatalogError:
        raise
    except PublisherError as e:
        raise CatalogError(f"cannot list the models of {endpoint}: {e.what}", fix="check --endpoint and that the server is up") from None
    except Exception as e:
        if _is_transport(e) or _is_hub_http(e):
            raise CatalogError(
                f"cannot list the models of {endpoint}: {describe(e, token)}",
                fix="check --endpoint and that the server is up",
            ) from None
        raise
    records: list[RepoRecord] = []
    skipped: list[Skipped] = []
    with tempfile.TemporaryDirectory(prefix="publisher-catalog-") as tmp:
        scratch = Path(tmp)

        def one(repo_id: str) -> RepoRecord | Skipped:
            try:
                record = reader.record(repo_id, include_untagged, scratch)
            except SkipRepo as e:
                return Skipped(repo_id, str(e), e.problem)
            except PublisherError as e:
                return Skipped(repo_id, e.what, True)
            except Exception as e:
                if _is_transport(e) or _is_hub_http(e):
                    return Skipped(repo_id, describe(e, token), True)
                raise
            if progress is not None:
                progress(repo_id)
            return record

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for result in pool.map(one, repo_ids):
                if isinstance(result, Skipped):
                    skipped.append(result)
                else:
                    records.append(result)
    return reader, records, skipped


def _is_hub_http(err: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(err, HfHubHTTPError)


class ReaderFetcher:
    """The lineage's CardFetcher over the same reader (memoized: each card is read once)."""

    def __init__(self, reader: HubReader) -> None:
        self.reader = reader

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        return self.reader.text(repo_id, filename, revision)
