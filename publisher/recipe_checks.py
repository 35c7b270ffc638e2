"""Semantic checks of a merge config, after the schema: methods, parameters, model counts.

What mergekit 0.1.5 would refuse (an unknown method, a value out of range, too few
models) raises a RecipeError naming ``file:line``; what it silently ignores (a parameter
the method does not read, a per-model value of a global parameter, a model listed twice)
is a warning that says it has no effect.
"""

from __future__ import annotations

from typing import Any

from publisher.chat_templates import NAMED, template_problem
from publisher.errors import RecipeError
from publisher.merge.methods import REGISTRY, MergeMethod
from publisher.recipe import ConditionalParameter, LoadedRecipe, MergeConfig, Warnings
from publisher.references import parse_reference
from publisher.suggest import did_you_mean
from publisher.yamlmap import Loc


def _setting_values(setting: Any, loc: Loc = ()) -> list[tuple[Loc, Any]]:
    """Every constant a parameter setting can evaluate to, with where it is written."""
    if isinstance(setting, ConditionalParameter):
        return _setting_values(setting.value, (*loc, "value"))
    if isinstance(setting, list):
        out: list[tuple[Loc, Any]] = []
        for i, item in enumerate(setting):
            out += _setting_values(item, (*loc, i))
        return out
    return [(loc, setting)]


def _at(loaded: LoadedRecipe, *loc: str | int) -> str:
    return f"{loaded.where(*loc)}: {'.'.join(map(str, loc))}"


def check_merge(loaded: LoadedRecipe, warnings: Warnings) -> None:
    merge = loaded.merge
    method = REGISTRY.get(merge.merge_method)
    if method is None:
        raise RecipeError(
            f"unknown merge_method '{merge.merge_method}'",
            where=f"{loaded.where('merge_method')}: merge_method",
            fix=did_you_mean(merge.merge_method, sorted(REGISTRY)) or f"use one of {', '.join(sorted(REGISTRY))}",
        )
    if (merge.models is None) == (merge.slices is None):
        raise RecipeError(
            "exactly one of 'models' or 'slices' must be given",
            where=loaded.where(),
            fix="list the parents under 'models:' (or 'slices:' for layer ranges)",
        )
    for ref_loc, ref in model_ref_locations(merge):
        _check_ref(loaded, ref_loc, ref)
    if merge.chat_template is not None:
        problem = template_problem(merge.chat_template)
        if problem:
            raise RecipeError(
                problem,
                where=_at(loaded, "chat_template"),
                fix=did_you_mean(merge.chat_template, sorted(NAMED)) or "use a name or a Jinja template",
            )
    _check_parameters(loaded, method, warnings)
    for i, s in enumerate(merge.slices or []):
        lengths = {src.layer_range[1] - src.layer_range[0] for src in s.sources}
        if len(lengths) > 1:
            raise RecipeError(
                f"sources of a slice must span the same number of layers, got {sorted(lengths)}",
                where=f"{loaded.where('slices', i)}: slices.{i}",
                fix="make every layer_range in the slice the same length",
            )
    _check_duplicates(loaded, warnings)
    _check_model_count(loaded, method, warnings)
    for q_i, _q in enumerate(loaded.recipe.quantize):
        if loaded.recipe.name is None:
            raise RecipeError(
                "a recipe with 'quantize' needs a 'name' (the variant repos are named after it)",
                where=loaded.where("quantize", q_i, merge=False),
                fix="add name: org/model",
            )


def _check_parameters(loaded: LoadedRecipe, method: MergeMethod, warnings: Warnings) -> None:
    merge = loaded.merge
    global_names = {p.name for p in method.params}
    model_names = {p.name for p in method.model_params}
    every = sorted(global_names | model_names)

    def check_block(params: dict[str, Any] | None, loc: Loc, *, per_model: bool) -> None:
        for name, setting in (params or {}).items():
            where = _at(loaded, *loc, name)
            p = method.param(name)
            if p is None:
                hint = did_you_mean(name, every)
                takes = f"{method.name} takes {', '.join(every)}" if every else f"{method.name} takes no parameters"
                warnings.add(f"parameter '{name}' has no effect for {method.name}", where=where, fix=hint or takes)
                continue
            if per_model and name in global_names and name not in model_names:
                warnings.add(
                    f"'{name}' is a global parameter of {method.name}: a per-model value has no effect",
                    where=where,
                    fix="move it to the top-level 'parameters:'",
                )
                continue
            if p.check is not None:
                for sub, value in _setting_values(setting):
                    problem = p.check(value)
                    if problem:
                        raise RecipeError(f"{name} {problem}", where=_at(loaded, *loc, name, *sub))

    check_block(merge.parameters, ("parameters",), per_model=False)
    for i, m in enumerate(merge.models or []):
        check_block(m.parameters, ("models", i, "parameters"), per_model=True)
    for i, s in enumerate(merge.slices or []):
        check_block(s.parameters, ("slices", i, "parameters"), per_model=False)
        for j, src in enumerate(s.sources):
            check_block(src.parameters, ("slices", i, "sources", j, "parameters"), per_model=True)


def _check_duplicates(loaded: LoadedRecipe, warnings: Warnings) -> None:
    """mergekit keys a tensor's inputs by model reference: a model listed twice is one input."""
    merge = loaded.merge
    groups: list[tuple[Loc, list[str]]] = []
    if merge.models is not None:
        groups.append((("models",), [m.model for m in merge.models]))
    for i, s in enumerate(merge.slices or []):
        groups.append((("slices", i, "sources"), [src.model for src in s.sources]))
    for loc, refs in groups:
        seen: set[str] = set()
        for j, ref in enumerate(refs):
            if ref in seen:
                warnings.add(
                    f"{ref} is listed more than once: it is one input, as in mergekit, so this entry has no "
                    "effect beyond parameters the earlier entry does not set",
                    where=_at(loaded, *loc, j, "model"),
                    fix="list each model once",
                )
            seen.add(ref)


def model_ref_locations(merge: MergeConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    if merge.base_model:
        out.append((("base_model",), merge.base_model))
    for i, m in enumerate(merge.models or []):
        out.append((("models", i, "model"), m.model))
    for i, s in enumerate(merge.slices or []):
        if s.base_model:
            out.append((("slices", i, "base_model"), s.base_model))
        for j, src in enumerate(s.sources):
            out.append((("slices", i, "sources", j, "model"), src.model))
    if merge.tokenizer_source and merge.tokenizer_source not in ("base", "union"):
        out.append((("tokenizer_source",), merge.tokenizer_source))
    if merge.tokenizer is not None:
        out += [(("tokenizer",), ref) for ref in merge.tokenizer_models()]
    return out


def _check_ref(loaded: LoadedRecipe, loc: Loc, ref: str) -> None:
    if loc in (("tokenizer_source",), ("tokenizer",)) and parse_reference(ref).lora is not None:
        raise RecipeError(
            f"a LoRA reference ('{ref}') has no tokenizer of its own",
            where=_at(loaded, *loc),
            fix="name the base model as tokenizer_source",
        )


def _check_model_count(loaded: LoadedRecipe, method: MergeMethod, warnings: Warnings) -> None:
    merge = loaded.merge
    if merge.models is not None:
        refs = list(dict.fromkeys(m.model for m in merge.models))
        if merge.base_model and merge.base_model not in refs:
            refs.append(merge.base_model)
        groups: list[tuple[Loc, list[str], str | None]] = [(("models",), refs, merge.base_model)]
    else:
        groups = [
            (("slices", i), list(dict.fromkeys(src.model for src in s.sources)), s.base_model or merge.base_model)
            for i, s in enumerate(merge.slices or [])
        ]
    legacy = set(merge.legacy_slerp_slices())
    for loc, refs, base in groups:
        where = _at(loaded, *loc)
        if loc[0] == "slices" and loc[1] in legacy:
            warnings.add(
                f"base model {base} is not among the slice's sources: mergekit >= 0.0.4 refuses this; "
                "built as mergekit <= 0.0.3.2 did (SLERP from the slice's second source, t = 0, to its first; "
                f"config.json and tokenizer from {base}, none of its weights)",
                where=where,
                fix="add the base model as a source of the slice",
            )
            continue
        if method.needs_base and not base:
            raise RecipeError(
                f"{method.name} needs a base model",
                where=f"{loaded.where()}: base_model",
                fix="add base_model: <the model the others were fine-tuned from>",
            )
        if method.needs_base and base and base not in refs and merge.slices is not None:
            raise RecipeError(
                f"base model {base} is not among the slice's sources",
                where=where,
                fix="add the base model as a source of the slice",
            )
        if len(refs) < method.min_models:
            raise RecipeError(f"{method.name} needs at least {method.min_models} models, got {len(refs)}", where=where)
        if method.max_models is not None and len(refs) > method.max_models:
            extra = " (base included)" if method.needs_base else ""
            raise RecipeError(f"{method.name} takes at most {method.max_models} models{extra}, got {len(refs)}", where=where)
