"""The catalog: catalog.json and a static site of every published model (or every local build).

``build_catalog(out, endpoint=... | builds=...)`` is the one entry point (``publisher
catalog`` is its command, ``publisher demo`` calls it after a release):

1. a source reads each model repo: the card, the versions, the facts from config.json and
   the safetensors headers (``hub.py``: Range requests, no weights; ``builds.py``: files);
2. ``entries.py`` parses each card's front matter and follows the lineage card to card;
3. ``site.py`` writes catalog.json, index.html and models/<ns>--<name>.html from Jinja2
   templates (``templates/catalog/``), into a temporary folder swapped into place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from publisher.card.fetchers import CardFetcher, FolderFetcher
from publisher.catalog.records import RepoRecord, Skipped, SkipRepo
from publisher.catalog.schema import Catalog, CatalogEntry
from publisher.errors import CatalogError
from publisher.hub.remote import (
    Retry,
    is_loopback,
    loopback_online,
    resolve_endpoint,
    resolve_token,
)

__all__ = ["Catalog", "CatalogEntry", "CatalogResult", "build_catalog", "collect_catalog", "write_site"]
PUBLIC_HUB = "https://huggingface.co"
LOCAL_HUB = "a local Hub"


@dataclass
class CatalogResult:
    catalog: Catalog
    out: Path | None  # the site folder (None when only collected)
    index: Path | None  # out/index.html
    warnings: list[str] = field(default_factory=list)  # repos skipped for a problem

    @property
    def lineage_gaps(self) -> int:
        return sum(len(e.lineage.gaps) for e in self.catalog.models)


def collect_catalog(
    *,
    endpoint: str | None = None,
    builds: Path | None = None,
    token: str | None = None,
    authors: Sequence[str] = (),
    include_untagged: bool = False,
    cards_dir: Path | None = None,
    strict: bool = False,
    retry: Retry | None = None,
    warn: Callable[[str], None] | None = None,
    hub_url: str | None = None,
) -> CatalogResult:
    """catalog.json's data from a Hub endpoint (default ``HF_ENDPOINT``) or from ``builds``.

    ``hub_url``: the public Hub the site links to (default: the endpoint; for builds,
    huggingface.co). A loopback endpoint (the local Hub) is never written into the site.
    """
    if endpoint is not None and builds is not None:
        raise CatalogError("give either an endpoint or a builds folder, not both")
    warnings: list[str] = []
    skipped: list[Skipped] = []
    fallbacks: list[CardFetcher] = []
    records: list[RepoRecord]
    entries: list[CatalogEntry]

    def on_skip(repo: str, e: SkipRepo) -> None:
        skipped.append(Skipped(repo, str(e), e.problem))

    if builds is not None:
        from publisher.catalog.builds import FoldersFetcher, read_builds

        records, skipped, parent_folders = read_builds(Path(builds))
        if cards_dir is not None:
            fallbacks.append(FolderFetcher(Path(cards_dir)))
        fallbacks.append(FoldersFetcher(parent_folders))
        source, location = "builds", str(builds)
        entries = _entries(records, fallbacks, on_skip)
    else:
        from publisher.catalog.hub import ReaderFetcher, check_offline, read_endpoint

        location = resolve_endpoint(endpoint)
        check_offline(location)
        with loopback_online(location):
            reader, records, skipped = read_endpoint(
                location, token=resolve_token(token), authors=authors, include_untagged=include_untagged, retry=retry
            )
            fallbacks.append(ReaderFetcher(reader))
            entries = _entries(records, fallbacks, on_skip)
        source = "hub"

    problems = sorted((s for s in skipped if s.problem), key=lambda s: s.repo.casefold())
    if strict and problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CatalogError(f"strict: {problems[0].line()}{more}", where=location, fix="fix the repo's card or files, or drop --strict")
    for s in problems:
        text = f"skipped {s.line()}"
        warnings.append(text)
        if warn is not None:
            warn(text)
    if not entries:
        why = f"; skipped: {'; '.join(s.line() for s in skipped[:3])}" if skipped else ""
        raise CatalogError(
            f"no models to list{why}", where=location,
            fix="publish a build first (publisher publish), or point --endpoint/--builds at one"
            + ("" if include_untagged or builds is not None else "; --include-untagged lists repos without a version tag"),
        )
    public = public_hub_url(hub_url, location if source == "hub" else None)
    if source == "hub":  # a loopback endpoint is the publisher's own machine: never on a page
        location = public or LOCAL_HUB
        entries = [e.model_copy(update={"source": f"{public}/{e.repo_id}" if public else LOCAL_HUB}) for e in entries]
    catalog = Catalog(
        source=source,  # type: ignore[arg-type]
        location=location,
        hub_url=public,
        models=entries,
        skipped=sorted((s.line() for s in skipped), key=str.casefold),
    )
    return CatalogResult(catalog, None, None, warnings)


def public_hub_url(hub_url: str | None, endpoint: str | None) -> str | None:
    """The Hub URL pages may print: --hub-url, else a non-loopback endpoint, else huggingface.co for builds."""
    if hub_url is not None:
        if not hub_url.startswith(("http://", "https://")):
            raise CatalogError(f"--hub-url {hub_url!r} is not an http(s) URL", fix="e.g. --hub-url https://huggingface.co")
        if is_loopback(hub_url):
            raise CatalogError(
                f"--hub-url {hub_url} is a loopback address: published pages would link to the publisher's own machine",
                fix="give the public address of the Hub, e.g. https://huggingface.co",
            )
        return hub_url.rstrip("/")
    if endpoint is None:
        return PUBLIC_HUB
    return None if is_loopback(endpoint) else endpoint.rstrip("/")


def _entries(records: list[RepoRecord], fallbacks: list[CardFetcher], on_skip: Callable[[str, SkipRepo], None]) -> list[CatalogEntry]:
    from publisher.catalog.entries import make_entries

    return make_entries(records, fallbacks=fallbacks, on_skip=on_skip)


def build_catalog(
    out: Path,
    *,
    endpoint: str | None = None,
    builds: Path | None = None,
    token: str | None = None,
    template_dir: Path | None = None,
    authors: Sequence[str] = (),
    include_untagged: bool = False,
    cards_dir: Path | None = None,
    strict: bool = False,
    retry: Retry | None = None,
    warn: Callable[[str], None] | None = None,
    hub_url: str | None = None,
) -> CatalogResult:
    """Collect the catalog and write the site to ``out`` (catalog.json, index.html, models/)."""
    from publisher.catalog.site import write_site

    result = collect_catalog(
        endpoint=endpoint, builds=builds, token=token, authors=authors, include_untagged=include_untagged,
        cards_dir=cards_dir, strict=strict, retry=retry, warn=warn, hub_url=hub_url,
    )
    result.index = write_site(result.catalog, Path(out), template_dir=template_dir)
    result.out = Path(out)
    return result


def write_site(catalog: Catalog, out: Path, *, template_dir: Path | None = None) -> Path:
    from publisher.catalog.site import write_site as _write

    return _write(catalog, out, template_dir=template_dir)
