"""Planning an FP8 variant from the source tensor list, before any value is computed.

The merge engine knows every output tensor (name, dtype, shape) up front; from that list
``plan_variant`` derives the variant's full layout (weight → F8_E4M3 weight + weight_scale
right after it, everything else unchanged, same order), validates the source (not already
quantized, supported dtypes, sane ignore list) and fixes the config's ``ignore`` list. The
plan then turns each source tensor into its variant tensors with ``VariantPlan.quantize``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from publisher.errors import QuantizeError
from publisher.lazy import torch
from publisher.quantize.config import variant_config
from publisher.quantize.fp8 import quantize_weight
from publisher.quantize.schemes import DEFAULT_SCHEME, FP8_DTYPE, Scheme, get_scheme
from publisher.quantize.targets import (
    IgnoreRules,
    check_fused,
    check_source,
    check_target_dtype,
    ignored_modules,
    is_target,
)
from publisher.tensors import TORCH_TO_DTYPE, PlannedTensor

SCALE_SUFFIX = "_scale"  # model.layers.0.mlp.up_proj.weight -> ...up_proj.weight_scale


def scale_name(weight_name: str) -> str:
    return weight_name + SCALE_SUFFIX


@dataclass(frozen=True)
class VariantPlan:
    """The layout of one FP8 variant and the per-tensor work that fills it."""

    scheme: Scheme
    ignore: IgnoreRules
    source: tuple[PlannedTensor, ...]  # the source (merged) tensors, in writing order
    tensors: tuple[PlannedTensor, ...]  # the variant's tensors, in writing order
    targets: frozenset[str]  # source tensor names that become FP8
    ignored_modules: tuple[str, ...]  # the config's ignore list

    @property
    def parameter_count(self) -> int:
        """Elements of every variant tensor, scales included: the index's ``total_parameters``
        (what ``num_parameters()`` of the loaded compressed model counts, and what the merge
        engine writes for every variant)."""
        total = 0
        for t in self.tensors:
            n = 1
            for d in t.shape:
                n *= d
            total += n
        return total

    def outputs(self, name: str) -> list[PlannedTensor]:
        """The variant tensors that source tensor ``name`` becomes."""
        src = self._source_by_name()[name]
        if name not in self.targets:
            return [src]
        return [
            PlannedTensor(name, FP8_DTYPE, src.shape),
            PlannedTensor(scale_name(name), src.dtype, self.scheme.scale_shape(src.shape)),
        ]

    def _source_by_name(self) -> dict[str, PlannedTensor]:
        return {t.name: t for t in self.source}

    def quantize(self, name: str, tensor: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Variant tensors for one source tensor, in writing order; untouched ones pass through."""
        if name not in self.targets:
            return [(name, tensor)]
        dtype = TORCH_TO_DTYPE.get(tensor.dtype, str(tensor.dtype))
        check_target_dtype(name, dtype)
        codes, scale = quantize_weight(tensor, self.scheme, name)
        return [(name, codes), (scale_name(name), scale)]

    def config(self, source_config: Mapping[str, Any]) -> dict[str, Any]:
        """The variant's config.json content: the source config plus ``quantization_config``."""
        return variant_config(source_config, self.scheme, self.ignored_modules)


def plan_variant(
    tensors: Sequence[PlannedTensor],
    scheme: str | Scheme = DEFAULT_SCHEME,
    ignore: Iterable[str] | IgnoreRules = (),
    config: Mapping[str, Any] | None = None,
    where: str = "model",
) -> VariantPlan:
    """Validate the source and lay out the variant; raises QuantizeError for bad input."""
    s = get_scheme(scheme)
    rules = ignore if isinstance(ignore, IgnoreRules) else IgnoreRules.parse(ignore)
    check_source(tensors, config, where)
    targets = [t.name for t in tensors if is_target(t.name, t.shape, rules)]
    if not targets:
        raise QuantizeError(
            "no decoder Linear weights to quantize (looked for 2-D *.weight tensors under layers.N.)",
            where=where,
            fix="check the ignore patterns, or that this is a transformer checkpoint",
        )
    by_name = {t.name: t for t in tensors}
    for name in targets:
        check_target_dtype(name, by_name[name].dtype, where)
    check_fused(targets, tensors)
    target_set = frozenset(targets)
    out: list[PlannedTensor] = []
    for t in tensors:
        if t.name in target_set:
            out.append(PlannedTensor(t.name, FP8_DTYPE, t.shape))
            out.append(PlannedTensor(scale_name(t.name), t.dtype, s.scale_shape(t.shape)))
        else:
            out.append(t)
    taken = {t.name for t in tensors}
    for t in out:
        if t.name.endswith(SCALE_SUFFIX) and t.name in taken:
            raise QuantizeError(f"tensor {t.name} already exists in the source", where=where)
    return VariantPlan(
        scheme=s,
        ignore=rules,
        source=tuple(tensors),
        tensors=tuple(out),
        targets=target_set,
        ignored_modules=tuple(ignored_modules(tensors, target_set, config)),
    )


def plan_tensors(
    tensors: Sequence[PlannedTensor], scheme: str | Scheme = DEFAULT_SCHEME, ignore: Iterable[str] = ()
) -> list[PlannedTensor]:
    """Just the variant's tensor layout (see ``plan_variant``)."""
    return list(plan_variant(tensors, scheme, ignore).tensors)


def quantize_tensor(
    name: str, tensor: torch.Tensor, scheme: str | Scheme = DEFAULT_SCHEME, ignore: Iterable[str] = ()
) -> list[tuple[str, torch.Tensor]]:
    """One tensor on its own: FP8 codes + scale for a target, the tensor itself otherwise."""
    s = get_scheme(scheme)
    rules = ignore if isinstance(ignore, IgnoreRules) else IgnoreRules.parse(ignore)
    if not is_target(name, tuple(tensor.shape), rules):
        return [(name, tensor)]
    codes, scale = quantize_weight(tensor, s, name)
    return [(name, codes), (scale_name(name), scale)]
