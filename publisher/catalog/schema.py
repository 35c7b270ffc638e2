"""catalog.json: one entry per model repo, the data both the site and other tools read.

Deterministic: entries sorted by repo id (case-insensitive), versions newest first, no
timestamps of the catalog run itself, so the same source gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from publisher.card.facts import Strip

CATALOG_SCHEMA = 1
CATALOG_FILE = "catalog.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Version(_Model):
    version: str  # "1.0.0"
    tag: str | None  # "v1.0.0" (None for a local build)
    commit: str | None  # the tagged commit on the Hub (None for a local build)
    date: datetime  # the tagged commit's date; the build time for a local build


class VariantLink(_Model):
    """Another published form of the same merge (the bf16 model and its quantized copies)."""

    repo_id: str
    variant: str  # "BF16", "FP8"
    page: str


class LineageNodeData(_Model):
    id: str
    repo_id: str | None
    label: str
    status: str  # ok | unknown | no-card | cycle | depth-limit
    relation: str | None
    method: str | None
    license: str | None
    note: str | None
    page: str | None  # its catalog page when the ancestor is in the catalog
    is_root: bool


class LineageData(_Model):
    nodes: list[LineageNodeData]
    edges: list[tuple[str, str]]  # (parent id, child id)
    gaps: list[str]  # ancestors whose card could not be read


class QuantData(_Model):
    label: str
    scheme: str
    weights: str
    activations: str


class FactsData(_Model):
    parameter_count: int
    dtype: str
    dtypes: dict[str, int]
    quantization: QuantData | None
    context_config: int | None
    context_served: int | None
    sliding_window: int | None
    architecture_class: str | None
    model_type: str | None
    layers: int | None
    hidden_size: int | None
    tensor_count: int
    total_bytes: int


class MeasuredData(_Model):
    """What ``publisher check`` measured, as the card's model-index states it (never declared results)."""

    perplexity: float
    top1_agreement: float | None = None  # FP8 variants: against the merged model
    recovery: float | None = None
    text: str  # "pydoc_data.topics (Python 3.11.7), first 512 tokens"
    text_sha256: str | None
    label: str  # "measured by publisher 0.1.0 check on 2026-12-01"


class CatalogEntry(_Model):
    repo_id: str
    page: str  # relative to the site root
    variant: str  # "BF16", "FP8": the strip's quant
    quantized: bool
    relation: str | None  # merge | quantized | finetune | adapter
    method: str | None  # merge method ("slerp"); the merged model's method for a quantized copy
    parents: list[str]  # base_model of the card
    family: str  # the merged model's repo id: a model and its quantized copies share it
    variants: list[VariantLink]  # every form of the family, this one included
    strip: Strip
    strip_line: str
    license: str | None
    license_name: str | None
    tags: list[str]
    pipeline_tag: str | None
    summary: str
    revision: str | None  # the Hub commit the card was read at (None for a local build)
    versions: list[Version]
    facts: FactsData
    lineage: LineageData
    source: str  # the repo's public URL, "a local Hub", or the build folder
    card: str  # the card's Markdown body (front matter removed)
    card_data: dict[str, Any]  # the card's front matter as parsed
    measured: MeasuredData | None = None  # the release gate's measurement, from the card's model-index


class Catalog(_Model):
    schema_version: int = CATALOG_SCHEMA
    source: Literal["hub", "builds"]
    location: str  # the public Hub URL, "a local Hub", or the builds folder (never a loopback address)
    hub_url: str | None = None  # the public Hub the site links repos to (--hub-url), if any
    models: list[CatalogEntry]
    skipped: list[str]  # "<repo>: why" for every repo left out

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    def entry(self, repo_id: str) -> CatalogEntry:
        for e in self.models:
            if e.repo_id.casefold() == repo_id.casefold():
                return e
        raise KeyError(repo_id)


def page_of(repo_id: str) -> str:
    """``models/<namespace>--<name>.html``: repo ids never contain ``--`` at a slash's place."""
    return "models/" + repo_id.replace("/", "--") + ".html"
