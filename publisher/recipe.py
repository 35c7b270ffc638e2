"""Recipes: a mergekit configuration (the whole file, or under ``merge:``) plus our sections.

A mergekit YAML that people publish in their cards must load unchanged. Around it, the
optional sections say what mergekit cannot: where to publish (``name``, ``version``,
``publish``), what the card must state (``card``), which FP8 variants to produce
(``quantize``), the seed of random methods (``seed``) and the precision (``compute_dtype``).

Validation happens here, before any tensor is read: unknown keys (with a did-you-mean),
unknown methods and parameters, values out of range, impossible model counts. Every error
names ``file:line`` and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from publisher.errors import RecipeError
from publisher.merge.methods import REGISTRY, MergeMethod
from publisher.tensors import dtype_name
from publisher.yamlmap import Loc, LocatedYaml, load_located

REPO_PART = r"(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
REPO_ID_RE = re.compile(rf"^{REPO_PART}/{REPO_PART}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9_.\-/]{1,200}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
OUR_SECTIONS = ("name", "version", "seed", "compute_dtype", "card", "quantize", "publish", "merge")

Scalar = bool | int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionalParameter(_Strict):
    value: Scalar | list[Scalar]
    filter: str | None = None


ParameterSetting = Scalar | list[float] | list[Scalar] | list[ConditionalParameter] | ConditionalParameter


class InputModel(_Strict):
    model: str
    parameters: dict[str, ParameterSetting] | None = None


class InputSlice(_Strict):
    model: str
    layer_range: tuple[int, int]
    parameters: dict[str, ParameterSetting] | None = None

    @field_validator("layer_range")
    @classmethod
    def _range_ok(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] <= v[0]:
            raise ValueError(f"layer_range {list(v)} must be [start, end) with 0 <= start < end")
        return v


class OutputSlice(_Strict):
    sources: list[InputSlice] = Field(min_length=1)
    base_model: str | None = None
    residual_weight: float | None = None
    parameters: dict[str, ParameterSetting] | None = None


class MergeConfig(_Strict):
    """mergekit's configuration, field for field (``modules:`` is refused for now)."""

    merge_method: str
    models: list[InputModel] | None = None
    slices: list[OutputSlice] | None = None
    base_model: str | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    chat_template: str | None = None
    parameters: dict[str, ParameterSetting] | None = None

    @field_validator("dtype", "out_dtype")
    @classmethod
    def _dtype_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            name = dtype_name(v)
        except ValueError as e:
            raise ValueError(f"{e}; use bfloat16, float16 or float32") from e
        if name not in ("BF16", "F16", "F32"):
            raise ValueError(f"dtype {v!r} is not a floating type; use bfloat16, float16 or float32")
        return v


class QuantizeSpec(_Strict):
    scheme: str = "fp8-dynamic"
    suffix: str | None = None  # variant repo = <name>-<suffix>; default from the scheme
    ignore: list[str] = Field(default_factory=list)  # extra modules to leave unquantized


class Evaluation(_Strict):
    task: str
    metric: str = "acc"
    value: float
    dataset: str | None = None
    split: str | None = None
    few_shot: int | None = None


class Comparison(_Strict):
    model: str
    results: dict[str, float]
    note: str | None = None


class CardSection(_Strict):
    """Facts the weights cannot tell. Everything else on the card is read from the output."""

    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    license_reason: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    summary: str | None = None
    description: str | None = None
    use_cases: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    language: list[str] | str | None = None
    tags: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    evaluations: str | list[Evaluation] | None = None  # an lm-eval results JSON path, or inline
    comparisons: list[Comparison] = Field(default_factory=list)
    template: str | None = None  # a Jinja2 template path, relative to the recipe


class PublishSection(_Strict):
    private: bool = False
    commit_message: str | None = None


class Recipe(_Strict):
    name: str | None = None
    version: str | None = None
    seed: int = Field(default=0, ge=0)
    compute_dtype: Literal["float32"] | None = None
    merge: MergeConfig
    quantize: list[QuantizeSpec] = Field(default_factory=list)
    card: CardSection = Field(default_factory=CardSection)
    publish: PublishSection = Field(default_factory=PublishSection)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str | None) -> str | None:
        if v is not None and not REPO_ID_RE.match(v):
            raise ValueError(f"{v!r} is not a repo id; use 'org/name' (letters, digits, '-', '_', '.')")
        return v

    @field_validator("version")
    @classmethod
    def _version_ok(cls, v: str | None) -> str | None:
        if v is not None and not SEMVER_RE.match(str(v)):
            raise ValueError(f"{v!r} is not a semantic version; use MAJOR.MINOR.PATCH, e.g. 1.0.0")
        return v


class LoadedRecipe:
    """A validated recipe with its source file, for errors (file:line) and provenance (sha256)."""

    def __init__(self, recipe: Recipe, source: LocatedYaml, prefix: Loc, text: bytes) -> None:
        self.recipe = recipe
        self.source = source
        self._merge_prefix = prefix  # () when the whole file is the mergekit config
        self.text = text
        self.sha256 = hashlib.sha256(text).hexdigest()

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def merge(self) -> MergeConfig:
        return self.recipe.merge

    @property
    def method(self) -> MergeMethod:
        return REGISTRY[self.recipe.merge.merge_method]

    def where(self, *loc: str | int, merge: bool = True) -> str:
        """``file:line`` of a field; ``merge=True`` addresses a path inside the merge config."""
        full = (*self._merge_prefix, *loc) if merge else tuple(loc)
        return self.source.where(full)


ALL_FIELD_NAMES = sorted(
    {
        name
        for model in (
            Recipe,
            MergeConfig,
            InputModel,
            InputSlice,
            OutputSlice,
            ConditionalParameter,
            QuantizeSpec,
            CardSection,
            PublishSection,
            Evaluation,
            Comparison,
        )
        for name in model.model_fields
    }
)


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: typos, including swapped letters, count as one edit."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    if not choices:
        return None
    best = min(choices, key=lambda c: (_edit_distance(word.lower(), c.lower()), c))
    if _edit_distance(word.lower(), best.lower()) <= max(1, len(word) // 3):
        return f"did you mean '{best}'?"
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"did you mean '{match[0]}'?" if match else None


def load_recipe(path: Path | str) -> LoadedRecipe:
    """Parse, validate and check a recipe file; every problem is a RecipeError with file:line."""
    path = Path(path)
    located = load_located(path)
    data = located.data
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a YAML mapping", where=located.where(()))
    if "merge" in data:
        prefix: Loc = ("merge",)
        shaped = dict(data)
    else:
        # A bare mergekit file: our own top-level keys ride along, the rest is the merge config.
        prefix = ()
        shaped = {k: v for k, v in data.items() if k in OUR_SECTIONS}
        shaped["merge"] = {k: v for k, v in data.items() if k not in OUR_SECTIONS}
    if "modules" in shaped.get("merge", {}):
        raise RecipeError(
            "'modules' (multimodal merges) is not supported",
            where=located.where((*prefix, "modules")),
            fix="use 'models' or 'slices'",
        )
    try:
        recipe = Recipe.model_validate(shaped)
    except ValidationError as e:
        raise _recipe_error(e, located, prefix) from None
    loaded = LoadedRecipe(recipe, located, prefix, path.read_bytes())
    check_merge(loaded)
    return loaded


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


def _recipe_error(e: ValidationError, located: LocatedYaml, prefix: Loc) -> RecipeError:
    errors = e.errors()
    # An unknown key usually explains a "missing" one (a typo), so report it first.
    errors.sort(key=lambda x: x["type"] != "extra_forbidden")
    err = errors[0]
    loc: Loc = tuple(err["loc"])
    # pydantic puts union-member names in loc (e.g. 'list[float]'); they are not YAML keys.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float", "bool"))))
    yaml_loc = loc if prefix or not loc or loc[0] != "merge" else loc[1:]
    field = ".".join(str(p) for p in loc if p != "merge" or prefix) or "recipe"
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, _field_names_at(loc[:-1])) or "remove it"
        return RecipeError(f"unknown key '{key}'", where=f"{located.where(yaml_loc)}: {field}", fix=hint)
    if err["type"] == "missing":
        return RecipeError(
            f"'{loc[-1]}' is required", where=f"{located.where(yaml_loc[:-1])}: {field}", fix=f"add '{loc[-1]}'"
        )
    msg = err["msg"].removeprefix("Value error, ")
    return RecipeError(msg, where=f"{located.where(yaml_loc)}: {field}")


# ----------------------------------------------------------------------------- semantic checks


def model_references(merge: MergeConfig) -> list[str]:
    """Every model the merge reads, base first, each once, in a stable order."""
    refs: list[str] = []
    if merge.base_model:
        refs.append(merge.base_model)
    for m in merge.models or []:
        refs.append(m.model)
    for s in merge.slices or []:
        if s.base_model:
            refs.append(s.base_model)
        for src in s.sources:
            refs.append(src.model)
    return list(dict.fromkeys(refs))


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


def check_merge(loaded: LoadedRecipe) -> None:
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
    for ref_loc, ref in _model_ref_locations(merge):
        _check_ref(loaded, ref_loc, ref)
    if merge.tokenizer_source == "union":
        raise RecipeError(
            "tokenizer_source 'union' is not supported yet",
            where=f"{loaded.where('tokenizer_source')}: tokenizer_source",
            fix="use 'base' or a model reference",
        )
    global_names = {p.name for p in method.params}
    model_names = {p.name for p in method.model_params}
    every = sorted(global_names | model_names)

    def check_block(params: dict[str, Any] | None, loc: Loc, *, per_model: bool) -> None:
        for name, setting in (params or {}).items():
            where = f"{loaded.where(*loc, name)}: {'.'.join(map(str, (*loc, name)))}"
            p = method.param(name)
            if p is None:
                hint = did_you_mean(name, every) or (
                    f"{method.name} takes {', '.join(every)}" if every else f"{method.name} takes no parameters"
                )
                raise RecipeError(f"unknown parameter '{name}' for {method.name}", where=where, fix=hint)
            if per_model and name in global_names and name not in model_names:
                raise RecipeError(
                    f"'{name}' is a global parameter of {method.name}, not a per-model one",
                    where=where,
                    fix="move it to the top-level 'parameters:'",
                )
            if p.check is not None:
                for sub, value in _setting_values(setting):
                    problem = p.check(value)
                    if problem:
                        full = (*loc, name, *sub)
                        raise RecipeError(
                            f"{name} {problem}",
                            where=f"{loaded.where(*full)}: {'.'.join(map(str, full))}",
                        )

    check_block(merge.parameters, ("parameters",), per_model=False)
    for i, m in enumerate(merge.models or []):
        check_block(m.parameters, ("models", i, "parameters"), per_model=True)
    for i, s in enumerate(merge.slices or []):
        check_block(s.parameters, ("slices", i, "parameters"), per_model=False)
        for j, src in enumerate(s.sources):
            check_block(src.parameters, ("slices", i, "sources", j, "parameters"), per_model=True)
        lengths = {src.layer_range[1] - src.layer_range[0] for src in s.sources}
        if len(lengths) > 1:
            raise RecipeError(
                f"sources of a slice must span the same number of layers, got {sorted(lengths)}",
                where=f"{loaded.where('slices', i)}: slices.{i}",
                fix="make every layer_range in the slice the same length",
            )
    _check_model_count(loaded, method)
    for q_i, _q in enumerate(loaded.recipe.quantize):
        if loaded.recipe.name is None:
            raise RecipeError(
                "a recipe with 'quantize' needs a 'name' (the variant repos are named after it)",
                where=loaded.where("quantize", q_i, merge=False),
                fix="add name: org/model",
            )


def _model_ref_locations(merge: MergeConfig) -> list[tuple[Loc, str]]:
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
    return out


def _check_ref(loaded: LoadedRecipe, loc: Loc, ref: str) -> None:
    where = f"{loaded.where(*loc)}: {'.'.join(map(str, loc))}"
    if "+" in ref:
        raise RecipeError(
            f"LoRA references ('{ref}') are not supported",
            where=where,
            fix="merge the LoRA into its base first and reference the result",
        )
    if not ref.strip():
        raise RecipeError("empty model reference", where=where)


def _check_model_count(loaded: LoadedRecipe, method: MergeMethod) -> None:
    merge = loaded.merge
    if merge.models is not None:
        refs = [m.model for m in merge.models]
        if merge.base_model and merge.base_model not in refs:
            refs.append(merge.base_model)
        groups: list[tuple[Loc, list[str], str | None]] = [(("models",), refs, merge.base_model)]
    else:
        groups = [
            (("slices", i), [src.model for src in s.sources], s.base_model or merge.base_model)
            for i, s in enumerate(merge.slices or [])
        ]
    for loc, refs, base in groups:
        where = f"{loaded.where(*loc)}: {'.'.join(map(str, loc))}"
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
            raise RecipeError(
                f"{method.name} needs at least {method.min_models} models, got {len(refs)}",
                where=where,
            )
        if method.max_models is not None and len(refs) > method.max_models:
            extra = " (base included)" if method.needs_base else ""
            raise RecipeError(
                f"{method.name} takes at most {method.max_models} models{extra}, got {len(refs)}",
                where=where,
            )


def reference_where(loaded: LoadedRecipe, ref: str) -> str:
    """``file:line`` where the recipe first names the model ``ref`` (errors about that parent)."""
    for loc, named in _model_ref_locations(loaded.merge):
        if named == ref:
            return loaded.where(*loc)
    return str(loaded.path)
