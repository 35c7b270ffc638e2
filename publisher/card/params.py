"""The merge parameters as they were actually applied, per layer band, for the card.

A recipe says ``t: [{filter: self_attn, value: [0, 0.5, 0.3, 0.7, 1]}, ...]``; a reader
wants to know which t layer 12's attention got. This evaluates the setting the way
mergekit does (and the engine follows): within an output slice of n layers, layer i has
t = i/(n-1) (t = 1 for a one-layer slice); a gradient of k stops is interpolated linearly
at t*(k-1); a list of conditions is tried in order and the first whose filter is a
substring of the tensor name wins (no filter, or ``*``, matches all); the per-model
setting wins over the slice's, the slice's over the global one, the global over the
method default. Tensors outside the layers (embeddings, final norm, lm_head) use t = 0.

The result is a table per parameter (and per model for per-model parameters): one column
per group of tensors that received the same values, one row per band of consecutive
layers with identical values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from publisher.merge.methods.registry import REQUIRED, MergeMethod
from publisher.merge.plan import evaluate_setting as plan_evaluate
from publisher.merge.plan import lookup_parameter
from publisher.recipe import ConditionalParameter, InputSlice, MergeConfig, OutputSlice

LAYER_RE = re.compile(r"^(?P<prefix>.*?\blayers\.)(?P<index>\d+)\.(?P<suffix>.+)$")
Value = bool | int | float | str | None


def decided_by(tensor_name: str, setting: Any) -> str | None:
    """The filter of the condition that gives ``tensor_name`` its value (None: no filter)."""
    items = [setting] if isinstance(setting, ConditionalParameter) else setting
    if isinstance(items, list):
        for cond in items:
            if isinstance(cond, ConditionalParameter) and (
                cond.filter is None or cond.filter == "*" or cond.filter in tensor_name
            ):
                return cond.filter if cond.filter not in (None, "*") else None
    return None


def evaluate_setting(tensor_name: str, setting: Any, t: float) -> tuple[Value, str | None]:
    """(value, the filter that decided it) — the value is the planner's, so the card shows
    exactly what the engine applies; None when no condition matched."""
    value = plan_evaluate(tensor_name, setting, t)
    return value, (decided_by(tensor_name, setting) if value is not None else None)


def _slices(merge: MergeConfig, num_layers: int) -> list[OutputSlice]:
    """The output slices as the planner forms them (a ``models:`` merge is one full-depth slice)."""
    if merge.slices is not None:
        return list(merge.slices)
    sources = [InputSlice(model=m.model, layer_range=(0, num_layers), parameters=m.parameters) for m in merge.models or []]
    if merge.base_model and merge.base_model not in [s.model for s in sources]:
        sources.append(InputSlice(model=merge.base_model, layer_range=(0, num_layers)))
    return [OutputSlice(sources=sources)]


@dataclass(frozen=True)
class Resolved:
    value: Value
    source: str  # the column label: the filter that decided it, "all", or "default"


def _level_settings(param: str, model: str | None, sl: OutputSlice, merge: MergeConfig) -> list[Any]:
    """The settings of ``param`` in lookup order (per-model, slice, global), as the planner reads them."""
    out: list[Any] = []
    if model is not None:
        out += [src.parameters[param] for src in sl.sources if src.model == model and src.parameters and param in src.parameters]
    if sl.parameters and param in sl.parameters:
        out.append(sl.parameters[param])
    if merge.parameters and param in merge.parameters:
        out.append(merge.parameters[param])
    return out


def _resolve(
    param: str,
    name: str,
    model: str | None,
    sl: OutputSlice,
    t: float,
    merge: MergeConfig,
    default: Any,
) -> Resolved:
    value = lookup_parameter(merge, param, tensor_name=name, t=t, out_slice=sl, model=model)
    if value is None:
        return Resolved(None, "not set") if default is REQUIRED else Resolved(default, "default")
    for setting in _level_settings(param, model, sl, merge):
        if plan_evaluate(name, setting, t) is not None:
            return Resolved(value, decided_by(name, setting) or "all")
    return Resolved(value, "all")


def format_value(v: Value) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = f"{v:.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(v)


@dataclass
class Column:
    label: str  # "self_attn", "mlp", "other", "all", "default"
    members: list[str]  # tensor suffixes in the column, e.g. "self_attn.q_proj.weight"


@dataclass
class Band:
    first: int
    last: int
    values: list[str]  # one per column, formatted

    @property
    def layers(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}–{self.last}"


@dataclass
class ParamTable:
    """One parameter (for one model, if per-model) as applied across the model."""

    name: str
    model: str | None
    columns: list[Column]
    bands: list[Band]
    outside: list[tuple[str, str]]  # (tensor name, value) for tensors outside the layers
    setting: str  # the setting as written, compact
    constant: str | None = None  # the single value when it is the same everywhere
    notes: list[str] = field(default_factory=list)

    @property
    def varies(self) -> bool:
        return self.constant is None


def _compact(setting: Any) -> str:
    if isinstance(setting, ConditionalParameter):
        setting = [setting]
    if isinstance(setting, list):
        parts = []
        for e in setting:
            if isinstance(e, ConditionalParameter):
                parts.append(f"{e.filter or 'else'}: {_compact(e.value)}")
            else:
                parts.append(format_value(e))
        inner = ", ".join(parts)
        return f"[{inner}]" if not any(isinstance(e, ConditionalParameter) for e in setting) else inner
    return format_value(setting)


def _written(name: str, model: str | None, merge: MergeConfig) -> str:
    found: list[str] = []
    for s in merge.slices or []:
        for src in s.sources:
            if model is not None and src.model == model and src.parameters and name in src.parameters:
                found.append(_compact(src.parameters[name]))
        if s.parameters and name in s.parameters:
            found.append(_compact(s.parameters[name]))
    for m in merge.models or []:
        if model is not None and m.model == model and m.parameters and name in m.parameters:
            found.append(_compact(m.parameters[name]))
    if merge.parameters and name in merge.parameters:
        found.append(_compact(merge.parameters[name]))
    return "; ".join(dict.fromkeys(found)) or "not set (method default)"


def parameter_table(
    name: str,
    merge: MergeConfig,
    tensor_names: Sequence[str],
    num_layers: int,
    *,
    model: str | None = None,
    default: Any = REQUIRED,
) -> ParamTable:
    """Evaluate one parameter over every tensor of the output model."""
    slices = _slices(merge, num_layers)
    suffixes = sorted({m["suffix"] for n in tensor_names if (m := LAYER_RE.match(n))})
    prefix = next((m["prefix"] for n in tensor_names if (m := LAYER_RE.match(n))), "model.layers.")
    outside_names = sorted(n for n in tensor_names if not LAYER_RE.match(n))
    total = sum(s.sources[0].layer_range[1] - s.sources[0].layer_range[0] for s in slices)

    # per suffix: the (value, label) at every output layer
    per_suffix: dict[str, list[Resolved]] = {}
    for suffix in suffixes:
        row: list[Resolved] = []
        out_layer = 0
        for sl in slices:
            n = sl.sources[0].layer_range[1] - sl.sources[0].layer_range[0]
            for i in range(n):
                t = i / (n - 1) if n > 1 else 1.0
                tensor = f"{prefix}{out_layer}.{suffix}"
                if model is not None:
                    # per-model settings are matched against the model's *input* tensor name
                    first = next((s.layer_range[0] for s in sl.sources if s.model == model), None)
                    if first is not None:
                        tensor = f"{prefix}{first + i}.{suffix}"
                row.append(_resolve(name, tensor, model, sl, t, merge, default))
                out_layer += 1
        per_suffix[suffix] = row

    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for suffix, row in per_suffix.items():
        labels = {r.source for r in row}
        label = labels.pop() if len(labels) == 1 else "mixed"
        key = (label, tuple(format_value(r.value) for r in row))
        groups.setdefault(key, []).append(suffix)
    filters = _filter_order(name, merge)
    ordered = sorted(groups.items(), key=lambda kv: _column_order(kv[0][0], filters))
    # one label may yield several columns (e.g. a layer-name filter); number them apart
    seen: dict[str, int] = {}
    columns: list[Column] = []
    vectors: list[tuple[str, ...]] = []
    for (label, vector), members in ordered:
        seen[label] = seen.get(label, 0) + 1
        shown = _shown_label(label) if seen[label] == 1 else f"{_shown_label(label)} ({seen[label]})"
        columns.append(Column(shown, sorted(members)))
        vectors.append(vector)

    bands: list[Band] = []
    for layer in range(total):
        values = [v[layer] for v in vectors]
        if bands and bands[-1].values == values:
            bands[-1].last = layer
        else:
            bands.append(Band(layer, layer, values))

    outside: list[tuple[str, str]] = []
    for tname in outside_names:
        sl = slices[0] if any(e in tname for e in ("embed_tokens", "wte", "embed_in")) else slices[-1]
        outside.append((tname, format_value(_resolve(name, tname, model, sl, 0.0, merge, default).value)))

    everything = {v for b in bands for v in b.values} | {v for _, v in outside}
    constant = everything.pop() if len(everything) == 1 else None
    return ParamTable(
        name=name,
        model=model,
        columns=columns,
        bands=bands,
        outside=outside,
        setting=_written(name, model, merge),
        constant=constant,
    )


def _filter_order(name: str, merge: MergeConfig) -> list[str]:
    """The filters of a parameter in the order the recipe writes them (columns follow it)."""
    settings: list[Any] = []
    for s in merge.slices or []:
        for src in s.sources:
            settings.append((src.parameters or {}).get(name))
        settings.append((s.parameters or {}).get(name))
    for m in merge.models or []:
        settings.append((m.parameters or {}).get(name))
    settings.append((merge.parameters or {}).get(name))
    out: list[str] = []
    for setting in settings:
        items = [setting] if isinstance(setting, ConditionalParameter) else setting
        if isinstance(items, list):
            out += [c.filter for c in items if isinstance(c, ConditionalParameter) and c.filter]
    return list(dict.fromkeys(out))


def _column_order(label: str, filters: list[str]) -> tuple[int, int, str]:
    if label in filters:
        return (0, filters.index(label), label)
    rank = {"all": 2, "mixed": 3, "default": 4, "not set": 5}
    return (rank.get(label, 1), 0, label)


def _shown_label(label: str) -> str:
    return {"all": "other", "mixed": "mixed", "default": "default", "not set": "not set"}.get(label, label)


def parameter_tables(
    merge: MergeConfig,
    method: MergeMethod,
    tensor_names: Sequence[str],
    num_layers: int,
) -> list[ParamTable]:
    """Every parameter the method takes: global ones once, per-model ones per model."""
    tables: list[ParamTable] = []
    for p in method.params:
        tables.append(parameter_table(p.name, merge, tensor_names, num_layers, default=p.default))
    models = _model_order(merge)
    base = merge.base_model
    for p in method.model_params:
        for m in models:
            if m == base and method.needs_base:
                continue  # per-model parameters of task-vector methods do not apply to the base
            tables.append(parameter_table(p.name, merge, tensor_names, num_layers, model=m, default=p.default))
    return tables


def _model_order(merge: MergeConfig) -> list[str]:
    out: list[str] = []
    for m in merge.models or []:
        out.append(m.model)
    for s in merge.slices or []:
        for src in s.sources:
            out.append(src.model)
    if merge.base_model:
        out.append(merge.base_model)
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- band summaries


@dataclass(frozen=True)
class Run:
    """Consecutive layers whose value is constant or changes linearly (one piece of a gradient)."""

    first: int
    last: int
    start: str  # the value at ``first``
    end: str  # the value at ``last``

    @property
    def layers(self) -> str:
        return f"layer {self.first}" if self.first == self.last else f"layers {self.first}–{self.last}"

    @property
    def text(self) -> str:
        values = self.start if self.start == self.end else f"{self.start} → {self.end}"
        return f"{values} ({self.layers})"


@dataclass(frozen=True)
class ColumnSummary:
    label: str
    runs: list[Run]

    @property
    def text(self) -> str:
        return ", ".join(r.text for r in self.runs)


def _as_float(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def column_runs(values: Sequence[str], first_layer: int = 0) -> list[Run]:
    """Split per-layer values into constant or linear runs (values are rounded to 3 decimals)."""
    runs: list[Run] = []
    i = 0
    while i < len(values):
        j = i
        a = _as_float(values[i])
        step: float | None = None
        while j + 1 < len(values):
            b, c = _as_float(values[j]), _as_float(values[j + 1])
            if a is None or b is None or c is None:
                if values[j + 1] != values[i]:
                    break
            else:
                d = c - b
                if step is None:
                    step = d
                elif abs(d - step) > 0.0015:
                    break
            j += 1
        runs.append(Run(first_layer + i, first_layer + j, values[i], values[j]))
        i = j + 1
    return runs


def band_summary(table: ParamTable) -> list[ColumnSummary]:
    """Each column of a table as a few runs: a 32-band gradient becomes its 4 linear pieces."""
    if not table.bands:
        return []
    per_layer: list[list[str]] = [[] for _ in table.columns]
    for band in table.bands:
        for _ in range(band.first, band.last + 1):
            for k, v in enumerate(band.values):
                per_layer[k].append(v)
    start = table.bands[0].first
    return [ColumnSummary(c.label, column_runs(vals, start)) for c, vals in zip(table.columns, per_layer, strict=True)]
