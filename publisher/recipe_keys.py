"""Unknown keys and schema errors: what mergekit ignores becomes a warning, the rest one line.

mergekit's configuration classes are lax pydantic models: a key they do not know (a
misspelt ``dype``, a key from another tool) is dropped without a word. We drop it too,
with a warning that names it and the known key it is probably a typo of; our own sections
(``card``, ``quantize``, ``publish``) stay strict, as they are ours to define.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from publisher.check.settings import ChecksSection
from publisher.errors import RecipeError
from publisher.recipe import (
    CardSection,
    Comparison,
    ConditionalParameter,
    Evaluation,
    InputModel,
    InputSlice,
    MergeConfig,
    OutputSlice,
    PublishSection,
    QuantizeSpec,
    Recipe,
    TokenizerConfig,
    Warnings,
)
from publisher.suggest import did_you_mean
from publisher.yamlmap import Loc, LocatedYaml

PARAMS = "parameters"
# Which schema a mergekit key's value follows: a model (its keys are checked), or PARAMS.
CHILDREN: dict[type[BaseModel], dict[str, Any]] = {
    MergeConfig: {"models": InputModel, "slices": OutputSlice, "parameters": PARAMS, "tokenizer": TokenizerConfig},
    TokenizerConfig: {},
    InputModel: {"parameters": PARAMS},
    InputSlice: {"parameters": PARAMS},
    OutputSlice: {"sources": InputSlice, "parameters": PARAMS},
    ConditionalParameter: {},
}
ALL_FIELD_NAMES = sorted(
    {
        name
        for model in (Recipe, MergeConfig, InputModel, InputSlice, OutputSlice, ConditionalParameter,
                      QuantizeSpec, CardSection, PublishSection, ChecksSection, Evaluation, Comparison)
        for name in model.model_fields
    }
)


def _yaml_loc(loc: Loc, prefix: Loc) -> Loc:
    """A recipe path (merge config under 'merge') as a path in the file."""
    return (*prefix, *loc[1:]) if loc[:1] == ("merge",) else loc


def _field(loc: Loc, prefix: Loc) -> str:
    return ".".join(str(p) for p in loc if p != "merge" or prefix) or "recipe"


def strip_unknown(shaped: dict[str, Any], located: LocatedYaml, prefix: Loc, warnings: Warnings) -> dict[Loc, list[str]]:
    """Drop the keys mergekit would ignore from the merge config (in place), warning for each;
    returns them by parent path, so a missing required key can be explained by a typo."""
    stripped: dict[Loc, list[str]] = {}

    def model(value: Any, schema: type[BaseModel], loc: Loc) -> None:
        if not isinstance(value, dict):
            return
        for key in list(value):
            if key not in schema.model_fields and not (key == "revision" and schema in (InputModel, InputSlice)):
                where = f"{located.where(_yaml_loc((*loc, key), prefix))}: {_field((*loc, key), prefix)}"
                hint = did_you_mean(str(key), sorted(schema.model_fields))
                warnings.add(f"unknown key '{key}' has no effect" + (f" ({hint})" if hint else ""), where=where)
                stripped.setdefault(loc, []).append(str(key))
                del value[key]
                continue
            child = CHILDREN[schema].get(key)
            if child == PARAMS:
                for name, setting in (value[key] or {}).items() if isinstance(value[key], dict) else ():
                    conditional(setting, (*loc, key, name))
            elif child is not None and isinstance(value[key], dict):
                model(value[key], child, (*loc, key))
            elif child is not None:
                for i, item in enumerate(value[key]) if isinstance(value[key], list) else ():
                    model(item, child, (*loc, key, i))

    def conditional(setting: Any, loc: Loc) -> None:
        if isinstance(setting, dict):
            model(setting, ConditionalParameter, loc)
        elif isinstance(setting, list):
            for i, item in enumerate(setting):
                if isinstance(item, dict):
                    model(item, ConditionalParameter, (*loc, i))

    if isinstance(shaped.get("merge"), dict):
        shaped["merge"] = dict(shaped["merge"])
        model(shaped["merge"], MergeConfig, ("merge",))
    return stripped


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, dict, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out += _models_in(arg)
    return out


def _field_names_at(loc: Loc) -> list[str]:
    """Field names valid at ``loc`` (for did-you-mean), following the schema from Recipe down."""
    models: list[type[BaseModel]] = [Recipe]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for m in models:
            f = m.model_fields.get(part)
            if f is not None:
                nxt += _models_in(f.annotation)
        if not nxt:
            return ALL_FIELD_NAMES
        models = nxt
    return sorted({name for m in models for name in m.model_fields})


def recipe_error(e: ValidationError, located: LocatedYaml, prefix: Loc, stripped: dict[Loc, list[str]]) -> RecipeError:
    errors = e.errors()
    # An unknown key usually explains a "missing" one (a typo), so report it first.
    errors.sort(key=lambda x: x["type"] != "extra_forbidden")
    err = errors[0]
    loc: Loc = tuple(err["loc"])
    # pydantic puts union-member names in loc (e.g. 'list[float]'); they are not YAML keys.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float", "bool"))))
    yaml_loc = _yaml_loc(loc, prefix)
    field = _field(loc, prefix)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, _field_names_at(loc[:-1])) or "remove it"
        return RecipeError(f"unknown key '{key}'", where=f"{located.where(yaml_loc)}: {field}", fix=hint)
    if err["type"] == "missing":
        for typo in stripped.get(loc[:-1], []):
            if did_you_mean(typo, [str(loc[-1])]):
                typo_loc = (*loc[:-1], typo)
                return RecipeError(
                    f"unknown key '{typo}'",
                    where=f"{located.where(_yaml_loc(typo_loc, prefix))}: {_field(typo_loc, prefix)}",
                    fix=f"did you mean '{loc[-1]}'?",
                )
        return RecipeError(
            f"'{loc[-1]}' is required", where=f"{located.where(yaml_loc[:-1])}: {field}", fix=f"add '{loc[-1]}'"
        )
    msg = err["msg"].removeprefix("Value error, ")
    return RecipeError(msg, where=f"{located.where(yaml_loc)}: {field}")
