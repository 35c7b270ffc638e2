"""From what a source read (card text, facts, versions) to catalog entries with their lineage.

The card is the published truth about a model's origin: its front matter (``base_model``,
``base_model_relation``, ``license``, the method tag) is parsed with huggingface_hub, and
the ancestry is followed card to card with the card stage's own LineageResolver, through
the catalog's cards first and then the source (the endpoint, or parents' local folders).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import yaml

from publisher.card.facts import ModelFacts, strip_of
from publisher.card.fetchers import CardFetcher, FetchError
from publisher.card.lineage import Lineage, LineageNode, LineageResolver
from publisher.card.origin import SiblingRecipes, parse_card
from publisher.catalog.markdown import first_paragraph
from publisher.catalog.records import RepoRecord, SkipRepo, recipe_card
from publisher.catalog.schema import (
    CatalogEntry,
    FactsData,
    LineageData,
    LineageNodeData,
    QuantData,
    VariantLink,
    page_of,
)
from publisher.check.card import measured_from_card_data
from publisher.manifest import RECIPE_FILE

README = "README.md"


class CatalogFetcher:
    """Cards of the catalog's own models first, then each fallback in turn."""

    def __init__(self, known: dict[str, dict[str, str | None]], fallbacks: Sequence[CardFetcher]) -> None:
        self.known = known
        self.fallbacks = list(fallbacks)

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        files = self.known.get(repo_id.casefold())
        if files is not None and revision is None:
            return files.get(filename)
        last: FetchError | None = None
        for fetcher in self.fallbacks:
            try:
                return fetcher.read(repo_id, filename, revision)
            except FetchError as e:
                last = e
        raise last or FetchError(f"{repo_id} is not in the catalog's source")


def parse_front_matter(repo_id: str, text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) or SkipRepo naming what is malformed."""
    from huggingface_hub import ModelCard

    try:
        card = ModelCard(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at README.md line {mark.line + 2}" if mark is not None else ""  # +1: 1-based, +1: the opening ---
        raise SkipRepo(f"malformed card: the front matter is not valid YAML ({e.problem or e.context}{where})") from None
    except (ValueError, yaml.YAMLError) as e:
        raise SkipRepo(f"malformed card: {' '.join(str(e).split())[:200]}") from None
    data = card.data.to_dict()
    base = data.get("base_model")
    if base is not None and not (isinstance(base, str) or (isinstance(base, list) and all(isinstance(b, str) for b in base))):
        raise SkipRepo("malformed card: base_model is neither a repo id nor a list of repo ids")
    for key in ("license", "license_name", "pipeline_tag", "base_model_relation"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise SkipRepo(f"malformed card: {key} is not a string")
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise SkipRepo("malformed card: tags is not a list of strings")
    return data, card.text


def facts_data(f: ModelFacts) -> FactsData:
    q = f.quantization
    return FactsData(
        parameter_count=f.parameter_count,
        dtype=f.dtype,
        dtypes=f.dtypes,
        quantization=QuantData(label=q.label, scheme=q.scheme, weights=q.weights, activations=q.activations) if q else None,
        context_config=f.context.config_tokens,
        context_served=f.context.served_tokens,
        sliding_window=f.context.sliding_window,
        architecture_class=f.architecture.class_name,
        model_type=f.architecture.model_type,
        layers=f.architecture.layers,
        hidden_size=f.architecture.hidden_size,
        tensor_count=f.tensor_count,
        total_bytes=f.total_bytes,
    )


def _lineage_data(root: LineageNode, pages: dict[str, str]) -> LineageData:
    nodes, edges = Lineage(root, []).graph()
    gaps: list[str] = []
    out_nodes = []
    for node_id, n in nodes:
        if not n.known and not n.is_root:
            gap = f"{n.label}: {n.note or n.status}"
            if gap not in gaps:
                gaps.append(gap)
        out_nodes.append(
            LineageNodeData(
                id=node_id,
                repo_id=n.repo_id,
                label=n.label,
                status=n.status,
                relation=n.relation,
                method=n.method,
                license=n.license,
                note=n.note,
                page=pages.get(n.key),
                is_root=n.is_root,
            )
        )
    return LineageData(nodes=out_nodes, edges=[(a, b) for a, b, _label in edges], gaps=gaps)


def make_entries(
    records: list[RepoRecord],
    *,
    fallbacks: Sequence[CardFetcher],
    max_depth: int = 8,
    on_skip: Callable[[str, SkipRepo], None],
) -> list[CatalogEntry]:
    """Entries for every record whose card parses (the others go to ``on_skip``), sorted by repo id."""
    parsed: list[tuple[RepoRecord, dict[str, Any], str]] = []
    for r in records:
        try:
            data, body = parse_front_matter(r.repo_id, r.card_text)
        except SkipRepo as e:
            on_skip(r.repo_id, e)
            continue
        parsed.append((r, data, body))
    parsed.sort(key=lambda p: p[0].repo_id.casefold())

    known = {r.repo_id.casefold(): {README: r.card_text, **r.extra_files} for r, _, _ in parsed}
    pages = {r.repo_id.casefold(): page_of(r.repo_id) for r, _, _ in parsed}
    resolver = LineageResolver(
        fetcher=CatalogFetcher(known, fallbacks),
        siblings=SiblingRecipes(None, lambda _w: None),
        max_depth=max_depth,
    )

    drafts: list[dict[str, Any]] = []
    for r, data, body in parsed:
        info = parse_card(r.card_text)
        root = resolver.node(r.repo_id, repo_id=r.repo_id, path=[], depth=0)
        root.is_root = True
        latest = r.versions[0] if r.versions else None
        lic = data.get("license")
        card_section = recipe_card(r.extra_files.get(RECIPE_FILE))
        creator = data.get("model_creator") or card_section.get("creator") or r.repo_id.split("/")[0]
        first = card_section.get("original_published")
        strip = strip_of(
            r.facts,
            license=lic,
            published=latest.date.date() if latest else None,
            version=latest.version if latest else None,
            creator=str(creator),
            original_published=first if isinstance(first, date) else None,
        )
        quantized = r.facts.quantization is not None
        family = info.parents[0] if info.relation == "quantized" and info.parents else r.repo_id
        drafts.append(
            {
                "repo_id": r.repo_id,
                "page": page_of(r.repo_id),
                "variant": strip.quant,
                "quantized": quantized,
                "relation": info.relation,
                "method": info.method,
                "parents": info.parents,
                "family": family,
                "strip": strip,
                "strip_line": strip.line(),
                "license": lic,
                "license_name": data.get("license_name"),
                "tags": [t for t in data.get("tags") or []],
                "pipeline_tag": data.get("pipeline_tag") or r.facts.task,
                "summary": first_paragraph(body),
                "revision": r.revision,
                "versions": r.versions,
                "facts": facts_data(r.facts),
                "lineage": _lineage_data(root, pages),
                "source": r.source,
                "card": body,
                "card_data": data,
                "measured": measured_from_card_data(data),
            }
        )

    # a quantized copy without a method tag takes its merged model's method
    methods = {d["repo_id"].casefold(): d["method"] for d in drafts}
    families: dict[str, list[VariantLink]] = {}
    for d in drafts:
        if d["method"] is None and d["relation"] == "quantized":
            d["method"] = methods.get(d["family"].casefold())
        families.setdefault(d["family"].casefold(), []).append(
            VariantLink(repo_id=d["repo_id"], variant=d["variant"], page=d["page"])
        )
    entries = []
    for d in drafts:
        links = families[d["family"].casefold()]
        links = sorted(links, key=lambda v: (v.repo_id.casefold() != d["family"].casefold(), v.variant, v.repo_id.casefold()))
        entries.append(CatalogEntry(**{**d, "variants": links}))
    return entries
