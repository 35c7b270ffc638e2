"""mergekit's ``override_architecture``: a parent read as another architecture class.

mergekit 0.1.5's ``ModelReference`` takes ``{model: ..., override_architecture: LlamaForCausalLM}``;
the model's config then says that class (``ModelReference.config``), which is what the output
``config.json`` says when that model gives the output config (the base model, else the first
parent), and what mergekit compares when it refuses to mix architectures. The reference's
string leaves the override out, so the recipe keys the model as usual and keeps the override
here, one per model: the same model named with two different overrides (or with and without
one) is two architectures for one input, which mergekit refuses without ``--allow-crimes``.
"""

from __future__ import annotations

from typing import Any

from publisher.errors import RecipeError
from publisher.references import ModelPath, ModelRef, canonical, parse_reference
from publisher.yamlmap import Loc, LocatedYaml

OVERRIDE_KEY = "override_architecture"


def _ref_positions(merge: dict[str, Any]) -> list[tuple[Loc, Any, Any]]:
    """(location, reference as written, the item holding it) for every parent of a merge config."""
    out: list[tuple[Loc, Any, Any]] = []
    if "base_model" in merge:
        out.append((("base_model",), merge["base_model"], None))
    for i, m in enumerate(merge.get("models") or []) if isinstance(merge.get("models"), list) else ():
        if isinstance(m, dict) and "model" in m:
            out.append((("models", i, "model"), m["model"], m))
    for i, s in enumerate(merge.get("slices") or []) if isinstance(merge.get("slices"), list) else ():
        if not isinstance(s, dict):
            continue
        if "base_model" in s:
            out.append((("slices", i, "base_model"), s["base_model"], None))
        for j, src in enumerate(s.get("sources") or []) if isinstance(s.get("sources"), list) else ():
            if isinstance(src, dict) and "model" in src:
                out.append((("slices", i, "sources", j, "model"), src["model"], src))
    return out


def architecture_overrides(merge: Any, located: LocatedYaml, prefix: Loc) -> dict[str, str]:
    """Canonical reference -> the architecture its ``override_architecture`` names (raw merge config)."""
    if not isinstance(merge, dict):
        return {}
    seen: dict[str, tuple[str | None, Loc]] = {}
    for loc, raw, item in _ref_positions(merge):
        try:
            ref = parse_reference(raw)
            key = canonical(raw)
        except ValueError:
            continue  # reported with its line by the schema
        if isinstance(item, dict) and item.get("revision") not in (None, "") and ref.model.revision is None:
            key = str(ModelRef(ModelPath(ref.model.path, str(item["revision"])), ref.lora))  # as recipe._pin keys it
        arch = ref.architecture.strip() if ref.architecture else None
        if key in seen and seen[key][0] != arch:
            other, other_loc = seen[key]
            raise RecipeError(
                f"{key} is read as {arch or 'its own architecture'} here and as {other or 'its own architecture'} "
                f"at line {located.where((*prefix, *other_loc)).rsplit(':', 1)[-1]}: mergekit 0.1.5 refuses to mix "
                "architectures",
                where=f"{located.where((*prefix, *loc))}: {'.'.join(map(str, loc))}",
                fix=f"give every mention of {key} the same {OVERRIDE_KEY}",
            )
        seen.setdefault(key, (arch, loc))
    return {key: arch for key, (arch, _loc) in seen.items() if arch is not None}
