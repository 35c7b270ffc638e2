"""The template context of one variant's card: facts, lineage, merge, license, evaluations, provenance.

Everything a template may show is computed here, from the build (``BuildContext``) and the
variant's own facts; templates only lay it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from publisher import __version__
from publisher.card import evals, params
from publisher.card.facts import ModelFacts, Strip, strip_of
from publisher.card.license_check import LicenseReport
from publisher.card.licenses import class_descriptions, license_class, license_title, license_url
from publisher.card.lineage import Lineage, LineageNode
from publisher.card.provenance import quantized_from_revision, reproduce_context
from publisher.manifest import Manifest, Variant
from publisher.merge.methods import REGISTRY
from publisher.recipe import LoadedRecipe


@dataclass
class BuildContext:
    """What every variant's card of one build shares (read once per build)."""

    manifest: Manifest
    recipe: LoadedRecipe
    base_dir: Path
    build_dir: Path
    lineage: Lineage
    license: LicenseReport
    license_name: str | None
    license_link: str | None
    eval_rows: list[evals.EvalRow]
    merged_facts: ModelFacts
    param_tables: list[params.ParamTable]
    published: date
    warnings: list[str]


def hub_url(link_base: str) -> Callable[[str], Any]:
    base = link_base.rstrip("/")

    def url(repo_id: str) -> Any:
        return jinja2.utils.markupsafe.Markup(f"{base}/{quote(repo_id, safe='/')}")

    return url


def card_strip(ctx: BuildContext, facts: ModelFacts, variant: Variant) -> Strip:
    """The strip of one variant's card: the version's date, the creator (default the namespace)."""
    card = ctx.recipe.recipe.card
    repo = variant.repo_id or ctx.manifest.recipe_name
    creator = card.creator or (repo.split("/")[0] if repo and "/" in repo else None)
    return strip_of(
        facts, license=ctx.license.declared, published=ctx.published, version=ctx.manifest.recipe_version,
        creator=creator, original_published=card.original_published,
    )


def _variant_lineage(ctx: BuildContext, variant: Variant) -> Lineage:
    """The merged model's lineage, or for a quantized copy one more node: the copy itself."""
    merged_root = ctx.lineage.root
    if variant.name == "merged":
        return ctx.lineage
    root = LineageNode(
        ref=variant.repo_id or f"{merged_root.label}-{variant.name}",
        repo_id=variant.repo_id,
        revision=None,
        source="build",
        status="ok",
        license=merged_root.license,
        license_name=merged_root.license_name,
        license_link=merged_root.license_link,
        relation="quantized",
        method=None,
        parents=[merged_root],
        is_root=True,
    )
    return Lineage(root, ctx.lineage.warnings)


def _merge_section(ctx: BuildContext) -> dict[str, Any]:
    m = ctx.manifest
    r = ctx.recipe.recipe
    method = REGISTRY.get(m.merge_method)
    parents = list(ctx.lineage.root.parents)
    base = r.merge.base_model
    return {
        "method": m.merge_method,
        "pretty": (method.pretty_name if method and method.pretty_name else m.merge_method),
        "reference_url": method.reference_url if method and method.reference_url else None,
        "base": base,
        # a legacy SLERP's base outside its slices: config.json and tokenizer, no weights
        "donor": r.merge.weightless_base(),
        "parents": parents,
        "others": [p for p in parents if p.ref != base and p.repo_id != base],
        "dtype": r.merge.dtype,
        "out_dtype": m.out_dtype,
        "compute_dtype": m.compute_dtype,
        "tables": ctx.param_tables,
        "band_summary": params.band_summary,
        "assumed": dict(r.card.assumed),
        "slices": [
            {"sources": [(s.model, f"{s.layer_range[0]}–{s.layer_range[1] - 1}") for s in sl.sources]}
            for sl in r.merge.slices or []
        ],
        "tokenizer_source": r.merge.tokenizer_source,
        "known_method": method is not None,
    }


def _license_section(ctx: BuildContext) -> dict[str, Any]:
    card = ctx.recipe.recipe.card
    lic_id = ctx.license.declared
    return {
        "id": lic_id,
        "title": license_title(lic_id) if lic_id != "other" else (ctx.license_name or "other"),
        "url": ctx.license_link if lic_id == "other" else license_url(lic_id),
        "class": license_class(lic_id),
        "class_text": class_descriptions().get(license_class(lic_id), ""),
        "declared": card.license is not None,
        "derived_from": ctx.license.derived_from,
        "reason": card.license_reason,
        "conflicts": ctx.license.conflicts,
        "unchecked": ctx.license.unchecked,
    }


def _evaluation_section(ctx: BuildContext, merged: Variant, is_quant: bool) -> dict[str, Any]:
    """Every number labelled with the model it was measured on: the recipe's are the merged model's."""
    card = ctx.recipe.recipe.card
    measured = merged.repo_id or ctx.manifest.recipe_name or "the merged model"
    comparisons = None
    if ctx.eval_rows or card.comparisons:
        comparisons = evals.comparison_table(
            ctx.eval_rows, list(card.comparisons), measured=measured, measured_repo=merged.repo_id
        )
    return {
        "rows": ctx.eval_rows,
        "comparisons": comparisons,
        "measured_on": measured,
        "measured_repo": merged.repo_id,
        "on_other_model": is_quant,
        "in_model_index": [r for r in ctx.eval_rows if r.in_model_index],
    }


def model_context(
    ctx: BuildContext,
    variant: Variant,
    facts: ModelFacts,
    merged: Variant,
    link_base: str,
) -> dict[str, Any]:
    """The variables a card template gets for one variant (see templates/card/default.md.j2)."""
    m = ctx.manifest
    r = ctx.recipe.recipe
    card = r.card
    is_quant = variant.name != "merged"
    method = REGISTRY.get(m.merge_method)
    lineage = _variant_lineage(ctx, variant)
    nodes, edges = lineage.graph()
    strip = card_strip(ctx, facts, variant)
    model_name = variant.repo_id or f"{m.recipe_name or 'model'}{'' if not is_quant else '-' + variant.name}"
    context: dict[str, Any] = {
        "model": {
            "repo_id": variant.repo_id,
            "name": model_name,
            "short_name": model_name.split("/")[-1],
            "namespace": model_name.split("/")[0] if "/" in model_name else None,
            "variant": variant.name,
            "is_quantized": is_quant,
            "version": m.recipe_version,
            "published": strip.published_text,
            "published_iso": ctx.published.isoformat(),
            "creator": strip.creator,
            "original_published": strip.original_published_text,
        },
        "merged": {
            "repo_id": merged.repo_id,
            "revision": quantized_from_revision(ctx.build_dir, variant) if is_quant else None,
            "name": merged.repo_id or m.recipe_name or "the merged model",
            "facts": ctx.merged_facts,
        },
        # the other published forms of this model (the merged card links its FP8 copies)
        "variants": [
            {"name": v.name, "repo_id": v.repo_id, "quantized": v.name != "merged"}
            for v in m.variants if v.name != variant.name
        ],
        "strip": strip,
        "facts": facts,
        "quantization": facts.quantization,
        "text": {
            "summary": card.summary,
            "description": card.description,
            "use_cases": list(card.use_cases),
            "limitations": list(card.limitations),
        },
        "merge": _merge_section(ctx),
        "lineage": {
            "rows": lineage.rows(),
            "nodes": nodes,
            "edges": edges,
            "warnings": list(ctx.lineage.warnings),
        },
        "license": _license_section(ctx),
        "evaluation": _evaluation_section(ctx, merged, is_quant),
        "reproduce": reproduce_context(m, ctx.recipe.text, merged.repo_id or m.recipe_name or "model"),
        "provenance": {
            "inputs": m.inputs,
            "seed": m.seed,
            "tool": m.tool,
            "card_tool": f"publisher {__version__}",
            "recipe_sha256": m.recipe_sha256,
            "random_method": bool(method and method.random),
        },
        "hub_url": hub_url(link_base),
        "format_metric": evals.format_metric,
    }
    return context
