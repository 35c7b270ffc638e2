"""The gate: each threshold of the recipe's ``checks:`` section against what was measured.

A failed threshold is one Finding whose line gives the number and the threshold, e.g.
``checks.min_top1_agreement: FP8 top-1 agreement with the merged model is 0.912, below the
threshold 0.97``.
"""

from __future__ import annotations

import math

from publisher.check.results import Finding, Measurement
from publisher.check.settings import ChecksSection


def _fail(field: str, variant: str, message: str) -> Finding:
    return Finding(kind="threshold", variant=variant, where=f"checks.{field}", message=message)


def thresholds_of(settings: ChecksSection) -> dict[str, float | None]:
    keys = (
        "max_perplexity", "max_perplexity_vs_uniform", "max_perplexity_vs_best_parent",
        "min_top1_agreement", "max_mean_kl", "max_perplexity_vs_merged", "max_fp8_weight_error",
    )
    return {k: getattr(settings, k) for k in keys}


def apply_thresholds(settings: ChecksSection, measurements: list[Measurement], vocab_size: int | None) -> list[Finding]:
    out: list[Finding] = []
    merged = next((m for m in measurements if m.variant == "merged"), None)
    if merged is None:
        return out
    ppl = merged.perplexity
    if not math.isfinite(ppl):
        out.append(_fail("max_perplexity", "merged", f"merged perplexity is {ppl}, not a finite number"))
        return out
    if settings.max_perplexity is not None and ppl > settings.max_perplexity:
        out.append(_fail("max_perplexity", "merged", f"merged perplexity is {ppl:.4g}, above the threshold {settings.max_perplexity:.4g}"))
    if settings.max_perplexity_vs_uniform is not None and vocab_size:
        limit = settings.max_perplexity_vs_uniform * vocab_size
        if ppl > limit:
            out.append(_fail(
                "max_perplexity_vs_uniform", "merged",
                f"merged perplexity is {ppl:.4g}, above the threshold {limit:.4g} "
                f"({settings.max_perplexity_vs_uniform:g} × vocab_size {vocab_size}: worse than guessing)",
            ))
    parents = [m for m in measurements if m.variant.startswith("parent ") and math.isfinite(m.perplexity)]
    if settings.max_perplexity_vs_best_parent is not None and parents:
        best = min(parents, key=lambda m: m.perplexity)
        limit = settings.max_perplexity_vs_best_parent * best.perplexity
        if ppl > limit:
            out.append(_fail(
                "max_perplexity_vs_best_parent", "merged",
                f"merged perplexity is {ppl:.4g}, above the threshold {limit:.4g} "
                f"({settings.max_perplexity_vs_best_parent:g} × {best.variant.removeprefix('parent ')}'s {best.perplexity:.4g})",
            ))
    for m in measurements:
        if m.top1_agreement is None:
            continue
        out += _variant_findings(settings, m, ppl)
    return out


def _variant_findings(settings: ChecksSection, m: Measurement, merged_ppl: float) -> list[Finding]:
    out: list[Finding] = []
    v = m.variant
    if m.fp8_weight_error is not None and m.fp8_weight_error > settings.max_fp8_weight_error:
        out.append(_fail(
            "max_fp8_weight_error", v,
            f"{v}: {m.fp8_worst_tensor} dequantizes (q × weight_scale) {m.fp8_weight_error:.3g} of its group's "
            f"largest weight away from the merged weight, above the threshold {settings.max_fp8_weight_error:g} (a wrong scale)",
        ))
    if settings.min_top1_agreement is not None and m.top1_agreement is not None and m.top1_agreement < settings.min_top1_agreement:
        out.append(_fail(
            "min_top1_agreement", v,
            f"{v} top-1 agreement with the merged model is {m.top1_agreement:.4f}, below the threshold {settings.min_top1_agreement:g}",
        ))
    if settings.max_mean_kl is not None and m.mean_kl is not None and m.mean_kl > settings.max_mean_kl:
        out.append(_fail(
            "max_mean_kl", v, f"{v} mean KL from the merged model is {m.mean_kl:.4g} nats, above the threshold {settings.max_mean_kl:g}"
        ))
    if settings.max_perplexity_vs_merged is not None:
        limit = settings.max_perplexity_vs_merged * merged_ppl
        if not m.perplexity <= limit:
            out.append(_fail(
                "max_perplexity_vs_merged", v,
                f"{v} perplexity is {m.perplexity:.4g}, above the threshold {limit:.4g} "
                f"({settings.max_perplexity_vs_merged:g} × the merged model's {merged_ppl:.4g})",
            ))
    return out
