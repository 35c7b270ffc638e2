"""A card's front matter: base_model and its relation, license, tags, pipeline, model-index."""

from __future__ import annotations

from typing import Any

from publisher.card import evals
from publisher.card.context import BuildContext
from publisher.card.facts import ModelFacts
from publisher.manifest import Variant


def front_matter(ctx: BuildContext, variant: Variant, facts: ModelFacts, merged: Variant, model_name: str) -> Any:
    """The card's YAML front matter as huggingface_hub ModelCardData (it dumps it)."""
    from huggingface_hub import ModelCardData

    r = ctx.recipe.recipe
    card = r.card
    is_quant = variant.name != "merged"
    tags: list[str] = ["merge", ctx.manifest.merge_method]
    if facts.architecture.model_type:
        tags.append(facts.architecture.model_type)
    if is_quant and facts.quantization:
        tags += [facts.quantization.label.lower(), facts.quantization.scheme]
        if facts.quantization.method == "compressed-tensors":
            tags.append("compressed-tensors")
    tags += list(card.tags)
    if is_quant:
        base_model: str | list[str] | None = merged.repo_id
        relation = "quantized" if merged.repo_id else None
        results = None
    else:
        # a LoRA parent (relation "adapter") lists its base and its adapter; a legacy SLERP's
        # base outside its slices gave only config and tokenizer: not a weight parent
        donor = r.merge.weightless_base()
        repos = [
            repo
            for p in ctx.lineage.root.parents
            if donor is None or donor not in (p.ref, p.repo_id)
            for repo in ([q.repo_id for q in p.parents] if p.relation == "adapter" else [p.repo_id])
            if repo
        ]
        base_model = repos or None
        relation = "merge" if repos else None
        results = evals.eval_results(ctx.eval_rows) or None
    kwargs: dict[str, Any] = {}
    if relation:
        kwargs["base_model_relation"] = relation
    if card.creator:
        kwargs["model_creator"] = card.creator  # the key re-publications' cards use for the original author
    return ModelCardData(
        base_model=base_model,
        datasets=list(card.datasets) or None,
        language=card.language,
        library_name="transformers",
        license=ctx.license.declared,
        license_name=ctx.license_name,
        license_link=ctx.license_link,
        pipeline_tag=facts.task,
        tags=tags,
        eval_results=results,
        model_name=model_name if results else None,
        **kwargs,
    )
