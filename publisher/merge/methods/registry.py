"""The method registry: each merge method is one small pure function over one output tensor.

A method sees a ``TensorJob`` (the input tensors for one output tensor, already converted
to the load dtype, plus evaluated parameters) and returns the merged tensor. It never
touches files, threads or other tensors: that is the engine's job. Parameters are declared
with their mergekit names and defaults so the recipe validator can reject unknown names
and out-of-range values before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from publisher.determinism import tensor_generator, tensor_seed
from publisher.lazy import torch


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# A check returns None when the value is fine, else what is wrong with it ("must be in [0, 1]").
Check = Callable[[Any], str | None]


def in_range(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        ok = (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            return f"must be in {'(' if lo_open else '['}{lo}, {hi}], got {value}"
        return None

    return check


def non_negative(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, got {value!r}"
    return None if value >= 0 else f"must not be negative, got {value}"


def is_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, got {value!r}"
    return None


TRUE_WORDS = ("true", "yes", "on", "t", "y", "1")
FALSE_WORDS = ("false", "no", "off", "f", "n", "0")


def as_bool(value: Any) -> bool | None:
    """A flag as mergekit 0.1.5 reads it (pydantic, lax): true/false, 1/0 (``normalize: 1.0``,
    as its own cards write it), or a yes/no word; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    return None


def is_bool(value: Any) -> str | None:
    return None if as_bool(value) is not None else f"must be true or false, got {value!r}"


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = REQUIRED
    check: Check | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class TensorJob:
    """Everything a method needs to produce one output tensor."""

    name: str  # output tensor name
    tensors: list[torch.Tensor]  # one per input model, in recipe order, in the load dtype
    models: list[str]  # the model references, for messages
    base: int | None  # index of the base model in ``tensors``, if there is one
    params: dict[str, Any]  # global parameters evaluated for this tensor
    model_params: list[dict[str, Any]]  # per-model parameters, aligned with ``tensors``
    seed: int = 0  # the recipe's seed; random methods draw from ``generator()``
    compute_dtype: torch.dtype | None = None  # None: mergekit's precision for the method
    is_embed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def generator(self, salt: str = "") -> torch.Generator:
        """A generator seeded by (recipe seed, tensor name): order- and thread-independent."""
        return tensor_generator(self.seed, self.name + salt)

    def stream_seed(self, salt: str = "") -> int:
        """The 63-bit seed ``generator(salt)`` uses, for random streams drawn outside torch."""
        return tensor_seed(self.seed, self.name + salt)

    @property
    def base_tensor(self) -> torch.Tensor:
        assert self.base is not None
        return self.tensors[self.base]


MethodFn = Callable[[TensorJob], "torch.Tensor"]


@dataclass(frozen=True)
class Problem:
    """A recipe a method cannot run: which parameter, what is wrong, how to fix it."""

    param: str
    message: str
    fix: str


# check(non_base_count, has_base, params, model_params of the non-base models) -> Problem | None.
# Called with evaluated (per-tensor) values, so it sees what the method will see.
MethodCheck = Callable[[int, bool, dict[str, Any], list[dict[str, Any]]], Problem | None]


def zero_weight_sum(flag: str, params: dict[str, Any], model_params: list[dict[str, Any]]) -> Problem | None:
    """Normalising by weights that sum to zero divides by zero: one message for every method."""
    if params.get(flag) and model_params:
        total = sum(float(p.get("weight") or 0.0) for p in model_params)
        if abs(total) < 1e-8:
            return Problem("weight", f"weights sum to zero, so {flag} divides by zero", f"change a weight, or set {flag}: false")
    return None


def same_dtype(dtype: str) -> str:
    return dtype


def promote_f32(dtype: str) -> str:
    """float32, or float64 for float64 inputs (torch.promote_types(d, float32)), by safetensors name."""
    return "F64" if dtype == "F64" else "F32"


@dataclass(frozen=True)
class MergeMethod:
    name: str
    fn: MethodFn
    params: tuple[Param, ...] = ()
    model_params: tuple[Param, ...] = ()
    needs_base: bool = False
    min_models: int = 1
    max_models: int | None = None
    random: bool = False
    # Working memory beyond inputs and output, as a multiple of the input bytes; the engine
    # uses it to decide how many tensors may be in flight at once.
    workspace: float = 2.0
    pretty_name: str = ""
    reference_url: str = ""
    # Cross-parameter / structural validation beyond single values (None: nothing to check).
    check: MethodCheck | None = None
    # The dtype mergekit's method returns for inputs of a dtype (written unless out_dtype is set):
    # most return the input dtype; ramplus_tl and arcee_fusion promote to float32.
    # The dtype mergekit writes (without out_dtype) for a load dtype, by safetensors name.
    result_dtype: Callable[[str], str] = same_dtype

    def param(self, name: str) -> Param | None:
        for p in (*self.params, *self.model_params):
            if p.name == name:
                return p
        return None


REGISTRY: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> MergeMethod:
    if method.name in REGISTRY:
        raise RuntimeError(f"merge method {method.name} registered twice")
    REGISTRY[method.name] = method
    return method


def get_method(name: str) -> MergeMethod | None:
    return REGISTRY.get(name)
