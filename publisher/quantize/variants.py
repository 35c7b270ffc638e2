"""The recipe's ``quantize:`` section as engine variants: FP8 folders written in the merge's pass.

``publisher.build`` calls these three hooks: ``plan_variants`` (before the engine starts, so
bad input fails before anything is written), ``variant_config`` (config.json of a variant)
and ``variant_quantization`` (the manifest's description of it). Each variant's tensors are
the merged tensors passed through ``VariantPlan.quantize`` as the engine produces them; the
shard layout and config are those of ``publisher quantize`` run on the merged folder, so both
give the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from publisher.errors import QuantizeError
from publisher.quantize.plan import VariantPlan, plan_variant
from publisher.quantize.schemes import get_scheme

if TYPE_CHECKING:
    from publisher.merge.engine import VariantOutput
    from publisher.merge.plan import MergePlan

VARIANTS_DIR = "variants"


def _where(plan: MergePlan, index: int, *field: str) -> str:
    try:
        return plan.recipe.where("quantize", index, *field, merge=False)
    except Exception:  # the location is a courtesy; never let it hide the real error
        return f"{plan.recipe.path}: quantize[{index}]"


def _plans(plan: MergePlan) -> dict[str, VariantPlan]:
    """Variant name (repo suffix) → its plan, validated, in recipe order."""
    merged = [t.out for t in plan.tensors]
    out: dict[str, VariantPlan] = {}
    for i, spec in enumerate(plan.recipe.recipe.quantize):
        try:
            scheme = get_scheme(spec.scheme)
            vplan = plan_variant(merged, scheme, spec.ignore, plan.out_config, where=_where(plan, i))
        except QuantizeError as e:
            if e.where in (None, "scheme", "quantize.ignore"):
                e = QuantizeError(e.what, where=_where(plan, i, "scheme" if e.where == "scheme" else "ignore"), fix=e.fix)
            raise e from None
        name = spec.suffix or scheme.suffix
        if not name or "/" in name or name.startswith("."):
            raise QuantizeError(f"suffix {name!r} is not a usable folder/repo suffix", where=_where(plan, i, "suffix"))
        if name in out or name == "merged":
            raise QuantizeError(
                f"two quantize entries produce the variant {name!r}",
                where=_where(plan, i),
                fix="give one of them a different suffix",
            )
        out[name] = vplan
    return out


def plan_variants(plan: MergePlan) -> list[VariantOutput]:
    """One engine output per ``quantize:`` entry, in ``variants/<suffix>/``."""
    from publisher.merge.engine import VariantOutput

    return [
        VariantOutput(name=name, folder=f"{VARIANTS_DIR}/{name}", planned=list(vp.tensors), transform=vp.quantize)
        for name, vp in _plans(plan).items()
    ]


def _plan_of(plan: MergePlan, variant: VariantOutput) -> VariantPlan:
    plans = _plans(plan)
    if variant.name not in plans:
        raise KeyError(f"no quantize entry makes the variant {variant.name!r}")
    return plans[variant.name]


def variant_config(plan: MergePlan, variant: VariantOutput) -> dict[str, Any]:
    """The merged config plus the compressed-tensors ``quantization_config`` block."""
    return _plan_of(plan, variant).config(plan.out_config)


def variant_quantization(plan: MergePlan, variant: VariantOutput) -> dict[str, Any]:
    """What the manifest (and so the card) says about a variant: facts, not prose."""
    vp = _plan_of(plan, variant)
    s = vp.scheme
    return {
        "scheme": s.name,
        "method": "compressed-tensors",
        "format": "float-quantized",
        "weights": "fp8_e4m3",
        "weight_scales": "per-channel" if s.block is None else f"block {s.block[0]}x{s.block[1]}",
        "activations": "dynamic per-token" if s.block is None else f"dynamic per-group {s.activation_group_size}",
        "ignore": list(vp.ignored_modules),
        "quantized_tensors": len(vp.targets),
        "equivalent": f"llm-compressor {s.llmcompressor_preset}",
    }
