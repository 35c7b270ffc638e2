"""Recipes: a mergekit configuration (the whole file, or under ``merge:``) plus our sections.

A mergekit YAML that people publish in their cards must load unchanged. Around it, the
optional sections say what mergekit cannot: where to publish (``name``, ``version``,
``publish``), what the card must state (``card``), which FP8 variants to produce
(``quantize``), the seed of random methods (``seed``) and the precision (``compute_dtype``).

Validation happens here, before any tensor is read. What mergekit 0.1.5 refuses we refuse,
as one line naming ``file:line`` and the field. What mergekit accepts but ignores (an
unknown key, a parameter the method does not use, a duplicate model) is a one-line
warning saying it has no effect; ``--strict`` or ``publish: {strict: true}`` makes those
errors. The pieces: references.py (model references), recipe_keys.py (unknown keys and
schema errors), recipe_checks.py (semantic checks).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# the card section's schema lives in publisher.card.schema (the names are re-exported here)
from publisher.card.schema import CardSection
from publisher.card.schema import Comparison as Comparison
from publisher.card.schema import EvalSource as EvalSource
from publisher.card.schema import Evaluation as Evaluation
from publisher.check.settings import ChecksSection
from publisher.errors import RecipeError
from publisher.merge.methods import REGISTRY, MergeMethod
from publisher.references import (
    REPO_ID_RE,
    REVISION_RE,
    ModelPath,
    ModelRef,
    canonical,
    parse_reference,
)
from publisher.suggest import did_you_mean
from publisher.tensors import dtype_name
from publisher.yamlmap import Loc, LocatedYaml, load_located

__all__ = ["REPO_ID_RE", "REVISION_RE", "did_you_mean", "load_recipe", "model_references"]

SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
OUR_SECTIONS = ("name", "version", "seed", "compute_dtype", "card", "quantize", "publish", "checks", "merge")

Scalar = bool | int | float | str


def _numbers(value: Any) -> Any:
    """mergekit reads parameters as numbers (pydantic, lax): '1e-5' (a string to YAML 1.1) is 1e-05."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: (_numbers(v) if k == "value" else v) for k, v in value.items()}
    return value


def _parameters(value: Any) -> Any:
    return {k: _numbers(v) for k, v in value.items()} if isinstance(value, dict) else value


def _reference(value: Any) -> Any:
    if value in ("union", "base"):
        return value
    return canonical(value) if isinstance(value, str | dict) and not (isinstance(value, dict) and "kind" in value) else value


ModelRefStr = Annotated[str, BeforeValidator(_reference)]


def _pin(data: Any) -> Any:
    """A source's ``revision:`` pins its model (``model: org/x`` + ``revision: v1`` is ``org/x@v1``).
    mergekit 0.1.5 drops the key; we honour what it plainly asks for."""
    if not isinstance(data, dict) or data.get("revision") in (None, ""):
        return data
    data = dict(data)
    revision = str(data.pop("revision"))
    ref = parse_reference(data.get("model", ""))
    if ref.model.revision not in (None, revision):
        raise ValueError(f"revision '{revision}' contradicts the model's own '@{ref.model.revision}'; keep one")
    data["model"] = str(ModelRef(ModelPath(ref.model.path, revision), ref.lora))
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionalParameter(_Strict):
    value: Scalar | list[Scalar]
    filter: str | None = None


ParameterSetting = Scalar | list[float] | list[Scalar] | list[ConditionalParameter] | ConditionalParameter
Parameters = Annotated[dict[str, ParameterSetting] | None, BeforeValidator(_parameters)]


class InputModel(_Strict):
    model: ModelRefStr
    parameters: Parameters = None

    _revision = model_validator(mode="before")(_pin)


class InputSlice(_Strict):
    model: ModelRefStr
    layer_range: tuple[int, int]
    parameters: Parameters = None

    _revision = model_validator(mode="before")(_pin)

    @field_validator("layer_range")
    @classmethod
    def _range_ok(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] <= v[0]:
            raise ValueError(f"layer_range {list(v)} must be [start, end) with 0 <= start < end")
        return v


class OutputSlice(_Strict):
    sources: list[InputSlice] = Field(min_length=1)
    base_model: ModelRefStr | None = None
    residual_weight: float | None = None
    parameters: Parameters = None


class ZeroEmbedding(_Strict):
    kind: Literal["zero"]


class ModelTokenEmbedding(_Strict):
    """A token's embedding taken from another token (by id or text) of a model."""

    kind: Literal["model_token"]
    model: ModelRefStr
    token_id: int | None = None
    token: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ModelTokenEmbedding:
        if (self.token_id is None) == (self.token is None):
            raise ValueError("give exactly one of token_id or token")
        return self


def _embedding_source(value: Any) -> Any:
    """``{kind: zero}``, ``{kind: model_token, ...}`` or a model reference."""
    if isinstance(value, dict) and "kind" in value:
        kinds: dict[str, type[BaseModel]] = {"zero": ZeroEmbedding, "model_token": ModelTokenEmbedding}
        cls = kinds.get(value["kind"])
        if cls is None:
            raise ValueError(f"unknown embedding source kind {value['kind']!r}; use zero or model_token")
        try:
            return cls.model_validate(value)
        except ValidationError as e:
            raise ValueError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return _reference(value)


class TokenEmbedding(_Strict):
    source: Annotated[ZeroEmbedding | ModelTokenEmbedding | str | None, BeforeValidator(_embedding_source)] = None
    force: bool = False


class TokenizerConfig(_Strict):
    """mergekit's ``tokenizer:`` block: the output vocabulary and where new tokens' rows come from."""

    source: ModelRefStr = "union"  # "union", "base" or a model reference
    tokens: dict[str, TokenEmbedding] | None = None
    pad_to_multiple_of: int | None = Field(default=None, gt=0)


class MergeConfig(_Strict):
    """mergekit's configuration, field for field (one module of ``modules:`` is lifted to the top)."""

    merge_method: str
    models: list[InputModel] | None = None
    slices: list[OutputSlice] | None = None
    base_model: ModelRefStr | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    tokenizer: TokenizerConfig | None = None
    chat_template: str | None = None
    parameters: Parameters = None

    @model_validator(mode="after")
    def _one_tokenizer(self) -> MergeConfig:
        if self.tokenizer_source is not None and self.tokenizer is not None:
            raise ValueError("give tokenizer_source or a tokenizer block, not both (mergekit refuses both)")
        return self

    @property
    def vocabulary_source(self) -> str | None:
        """'union', 'base', a model reference, or None (copy the tokenizer, no re-indexing)."""
        return self.tokenizer.source if self.tokenizer is not None else self.tokenizer_source

    def tokenizer_models(self) -> list[str]:
        """Model references the tokenizer settings name (read like any parent)."""
        out = []
        src = self.vocabulary_source
        if src not in (None, "base", "union"):
            out.append(str(src))
        for spec in ((self.tokenizer.tokens or {}).values() if self.tokenizer else ()):
            if isinstance(spec.source, str):
                out.append(spec.source)
            elif isinstance(spec.source, ModelTokenEmbedding):
                out.append(spec.source.model)
        return out

    def legacy_slerp_slices(self) -> list[int]:
        """SLERP slices whose base model is none of their two sources. mergekit >= 0.0.4 refuses
        them; published configs of its earlier versions use them, and mergekit <= 0.0.3.2 built
        them from the slice's second source (t = 0) to its first: we do the same, with a warning."""
        if self.merge_method != "slerp" or self.slices is None:
            return []
        out = []
        for i, s in enumerate(self.slices):
            base = s.base_model or self.base_model
            refs = list(dict.fromkeys(src.model for src in s.sources))
            if base and base not in refs and len(refs) == 2:
                out.append(i)
        return out

    def weightless_base(self) -> str | None:
        """The base model of legacy SLERP slices when no slice reads its weights: it gives the
        config.json and the tokenizer only (mergekit <= 0.0.3.2), not a weight parent."""
        slices = self.slices or []
        legacy = self.legacy_slerp_slices()
        if not self.base_model or not legacy or len(legacy) != len(slices):
            return None
        if any(slices[i].base_model not in (None, self.base_model) for i in legacy):
            return None
        return self.base_model

    @field_validator("tokenizer_source", mode="before")
    @classmethod
    def _tokenizer_ref(cls, v: Any) -> Any:
        return v if v in (None, "base", "union") else _reference(v)

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


# The schema classes that are mergekit's: an unknown key in them is ignored by mergekit, so a
# warning here (recipe_keys.py); in our own sections an unknown key stays an error.
MERGEKIT_MODELS: tuple[type[BaseModel], ...] = (MergeConfig, InputModel, InputSlice, OutputSlice, ConditionalParameter, TokenizerConfig)


class QuantizeSpec(_Strict):
    scheme: str = "fp8-dynamic"
    suffix: str | None = None  # variant repo = <name>-<suffix>; default from the scheme
    ignore: list[str] = Field(default_factory=list)  # extra modules to leave unquantized


class PublishSection(_Strict):
    private: bool = False
    commit_message: str | None = None
    strict: bool = False  # warnings (keys and parameters with no effect) are errors


class Recipe(_Strict):
    name: str | None = None  # the repo id (org/name); see load_recipe for a name that is not one
    label: str | None = None  # a top-level name that is not a repo id (a mergekit-multi stage name)
    version: str | None = None
    seed: int = Field(default=0, ge=0)
    compute_dtype: Literal["float32"] | None = None
    merge: MergeConfig
    quantize: list[QuantizeSpec] = Field(default_factory=list)
    card: CardSection = Field(default_factory=CardSection)
    publish: PublishSection = Field(default_factory=PublishSection)
    checks: ChecksSection = Field(default_factory=ChecksSection)  # the release gate (publisher.check)

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
        self.warnings: list[str] = []  # one line each: what has no effect, and where
        self.architectures: dict[str, str] = {}  # model ref -> its override_architecture (architectures.py)

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


class Warnings:
    """Collects what has no effect; ``finish`` raises the first one when strict."""

    def __init__(self) -> None:
        self.items: list[RecipeError] = []

    def add(self, what: str, *, where: str, fix: str | None = None) -> None:
        self.items.append(RecipeError(what, where=where, fix=fix))

    def finish(self, strict: bool) -> list[str]:
        if strict and self.items:
            first = self.items[0]
            more = f"; {len(self.items) - 1} more" if len(self.items) > 1 else ""
            raise RecipeError(f"{first.what} (strict{more})", where=first.where, fix=first.fix or "remove it, or drop --strict")
        return [w.line() for w in self.items]


def _shape(data: dict[str, Any]) -> tuple[dict[str, Any], Loc]:
    """(recipe dict with the merge config under 'merge', where the merge config is in the file)."""
    if "merge" in data:
        return dict(data), ("merge",)
    # A bare mergekit file: our own top-level keys ride along, the rest is the merge config.
    shaped = {k: v for k, v in data.items() if k in OUR_SECTIONS}
    shaped["merge"] = {k: v for k, v in data.items() if k not in OUR_SECTIONS}
    return shaped, ()


def _lift_single_module(shaped: dict[str, Any], located: LocatedYaml, prefix: Loc) -> None:
    """``modules: {<name>: {models|slices, parameters}}`` with one module is the plain form: its
    inputs move up and its parameters sit between the slices' and the global ones, as in
    mergekit's ConfigReader. Several modules (multimodal merges) are refused."""
    merge = shaped.get("merge")
    if not isinstance(merge, dict) or "modules" not in merge:
        return
    modules = merge["modules"]
    where = located.where((*prefix, "modules"))
    if not isinstance(modules, dict) or len(modules) != 1:
        raise RecipeError(
            "'modules' with several modules (multimodal merges) is not supported",
            where=where,
            fix="merge one module: use 'models' or 'slices', or a single entry under 'modules'",
        )
    if "models" in merge or "slices" in merge:
        raise RecipeError("exactly one of 'models', 'slices' or 'modules' must be given", where=where)
    (name, module), = modules.items()
    if not isinstance(module, dict):
        raise RecipeError(f"module '{name}' must be a mapping with 'models' or 'slices'", where=where)
    merge = {k: v for k, v in merge.items() if k != "modules"}
    for key, value in module.items():
        if key == "parameters" and isinstance(value, dict):
            merge["parameters"] = {**(merge.get("parameters") or {}), **value}
        else:
            merge[key] = value
        located.alias((*prefix, "modules", name, key), (*prefix, key))
    shaped["merge"] = merge


def load_recipe(path: Path | str, *, strict: bool = False) -> LoadedRecipe:
    """Parse, validate and check a recipe file; every problem is a RecipeError with file:line.

    A top-level ``name:`` is our repo id when it has the form ``org/name``; anything else
    (``name: stage-1`` of a mergekit-multi file, ``name: My merge``) is kept as the recipe's
    label and names no repo."""
    from publisher.architectures import architecture_overrides
    from publisher.recipe_checks import check_merge
    from publisher.recipe_keys import recipe_error, strip_unknown

    path = Path(path)
    located = load_located(path)
    data = located.data
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a YAML mapping", where=located.where(()))
    shaped, prefix = _shape(data)
    warnings = Warnings()
    name = shaped.get("name")
    if name is not None and not (isinstance(name, str) and REPO_ID_RE.match(name)):
        shaped["label"] = str(name)
        del shaped["name"]
        warnings.add(
            f"name '{name}' is not a repo id, so it names no repo (kept as the recipe's label)",
            where=f"{located.where(('name',))}: name",
            fix="write name: org/model to publish under that repo id",
        )
    _lift_single_module(shaped, located, prefix)
    architectures = architecture_overrides(shaped.get("merge"), located, prefix)
    stripped = strip_unknown(shaped, located, prefix, warnings)
    try:
        recipe = Recipe.model_validate(shaped)
    except ValidationError as e:
        raise recipe_error(e, located, prefix, stripped) from None
    loaded = LoadedRecipe(recipe, located, prefix, path.read_bytes())
    loaded.architectures = architectures
    check_merge(loaded, warnings)
    loaded.warnings = warnings.finish(strict or recipe.publish.strict)
    return loaded


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
