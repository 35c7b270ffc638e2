"""The merge plan: for each output tensor, which input tensors and which parameter values.

Built from the recipe and the parents' safetensors headers only (no weights read), so
``publisher plan`` is instant and every shape, missing tensor or layer-range problem is
found before the engine starts. Parameter semantics are mergekit's:

- a gradient (list of numbers) is interpolated at t = i / (n - 1) for layer i of an n-layer
  slice; embeddings and the final norm / lm_head are evaluated at t = 0;
- a list of ``{filter, value}`` picks the first whose filter is a substring of the tensor
  name (no filter, or ``*``, matches everything);
- precedence: a slice source's (per-model) parameters, then the slice's, then the global
  ``parameters``, then the method's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from publisher.errors import MergeError, RecipeError
from publisher.merge.methods import REGISTRY, MergeMethod
from publisher.merge.methods.registry import as_bool, is_bool
from publisher.merge.vocab import VocabPlan, plan_vocabulary
from publisher.recipe import (
    ConditionalParameter,
    InputSlice,
    LoadedRecipe,
    MergeConfig,
    ModelTokenEmbedding,
    OutputSlice,
    ZeroEmbedding,
)
from publisher.sources import ResolvedModel
from publisher.tensors import PlannedTensor, TensorInfo, dtype_name

LAYER_RE = re.compile(r"^(?P<prefix>.*?\blayers)\.(?P<idx>\d+)\.(?P<rest>.+)$")
EMBED_NAMES = ("embed_tokens", "lm_head", "wte", "embed_in", "embed_out")
TIED_OUTPUT = "lm_head.weight"


def evaluate_setting(tensor_name: str, setting: Any, t: float) -> Any:
    """mergekit's evaluation of one parameter setting for one tensor at gradient position t."""
    if isinstance(setting, bool | int | float | str):
        return setting
    if isinstance(setting, ConditionalParameter):
        setting = [setting]
    if isinstance(setting, list):
        if all(isinstance(e, int | float) and not isinstance(e, bool) for e in setting):
            scaled = t * (len(setting) - 1)
            i0 = int(scaled)
            i1 = min(len(setting) - 1, i0 + 1)
            frac = scaled - i0
            return (1 - frac) * setting[i0] + frac * setting[i1]
        if all(isinstance(e, bool | int | float | str) for e in setting):
            return setting[int(t * (len(setting) - 1))]
        for cond in setting:
            if isinstance(cond, ConditionalParameter) and (
                cond.filter is None or cond.filter == "*" or (tensor_name and cond.filter in tensor_name)
            ):
                return evaluate_setting(tensor_name, cond.value, t)
    return None


def lookup_parameter(
    merge: MergeConfig,
    name: str,
    *,
    tensor_name: str,
    t: float,
    out_slice: OutputSlice | None,
    model: str | None = None,
) -> Any:
    """The value of ``name`` for one tensor (and one model, for per-model parameters), or None."""
    if out_slice is not None:
        if model is not None:
            for src in out_slice.sources:
                if src.model == model and src.parameters and name in src.parameters:
                    value = evaluate_setting(tensor_name, src.parameters[name], t)
                    if value is not None:
                        return value
        if out_slice.parameters and name in out_slice.parameters:
            value = evaluate_setting(tensor_name, out_slice.parameters[name], t)
            if value is not None:
                return value
    if merge.parameters and name in merge.parameters:
        return evaluate_setting(tensor_name, merge.parameters[name], t)
    return None


@dataclass(frozen=True)
class TensorPlan:
    """One output tensor: its inputs (model index, tensor name) and evaluated parameters."""

    out: PlannedTensor
    sources: tuple[tuple[int, str], ...]
    base: int | None  # position in ``sources`` of the base model's tensor
    params: dict[str, Any]
    model_params: tuple[dict[str, Any], ...]
    is_embed: bool
    layer: int | None  # output layer index, None for embeddings / final norm / head
    t: float

    @property
    def name(self) -> str:
        return self.out.name


@dataclass
class MergePlan:
    recipe: LoadedRecipe
    method: MergeMethod
    models: list[ResolvedModel]  # every parent, indexed by TensorPlan.sources
    tensors: list[TensorPlan]
    out_config: dict[str, Any]
    out_dtype: str
    load_dtype: str | None
    layer_count: int
    base_model: int | None  # index in ``models``
    tokenizer_model: int  # index in ``models`` of the tokenizer source
    notes: list[str] = field(default_factory=list)  # warnings worth showing (embedding rectification)
    vocab: VocabPlan | None = None  # the output vocabulary, when the recipe sets one (merge/vocab.py)

    @property
    def output_bytes(self) -> int:
        return sum(t.out.nbytes for t in self.tensors)

    @property
    def parameter_count(self) -> int:
        return sum(t.out.nbytes // _itemsize(t.out.dtype) for t in self.tensors)

    def input_bytes(self, t: TensorPlan) -> int:
        return sum(self.models[m].files.tensors[n].nbytes for m, n in t.sources)


def _itemsize(dtype: str) -> int:
    from publisher.tensors import ITEMSIZE

    return ITEMSIZE[dtype]


def _num_layers(model: ResolvedModel) -> int:
    n = model.config.get("num_hidden_layers")
    if isinstance(n, int):
        return n
    indices = {int(m.group("idx")) for name in model.files.tensors if (m := LAYER_RE.match(name))}
    return max(indices) + 1 if indices else 0


def _layer_tensors(model: ResolvedModel) -> dict[int, list[tuple[str, str, str]]]:
    """layer index -> [(prefix, rest, full name)] in file order."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    for name in model.files.tensors:
        m = LAYER_RE.match(name)
        if m:
            out.setdefault(int(m.group("idx")), []).append((m.group("prefix"), m.group("rest"), name))
    return out


class Planner:
    def __init__(self, loaded: LoadedRecipe, models: dict[str, ResolvedModel]) -> None:
        self.loaded = loaded
        self.merge = loaded.merge
        self.method = REGISTRY[self.merge.merge_method]
        self.refs = list(models)
        self.models = [models[r] for r in self.refs]
        self.index = {r: i for i, r in enumerate(self.refs)}
        self.layers = {r: _layer_tensors(m) for r, m in models.items()}
        self.tensors: list[TensorPlan] = []
        self.notes: list[str] = []
        self.vocab = self._vocabulary()
        wanted = self.merge.out_dtype or self.merge.dtype
        self.out_dtype_override = dtype_name(wanted) if wanted else None
        for ref, model in models.items():
            quantized = [i.name for i in model.files.tensors.values() if i.dtype.startswith("F8") or i.dtype in ("I8", "U8")]
            if quantized or "quantization_config" in model.config:
                raise MergeError(
                    f"parent {ref} is already quantized ({quantized[0] if quantized else 'quantization_config'})",
                    where=self._where_model(ref),
                    fix="merge the unquantized (bf16/fp16/fp32) parents and let publisher quantize the result",
                )

    # -- helpers ------------------------------------------------------------------------

    def _vocabulary(self) -> VocabPlan | None:
        """mergekit's tokenizer_source / tokenizer block: the output vocabulary and alignments."""
        merge = self.merge
        source = merge.vocabulary_source
        if source is None:
            return None
        base = self.index[merge.base_model] if merge.base_model else 0
        tokens: dict[str, dict[str, Any]] = {}
        for text, spec in ((merge.tokenizer.tokens or {}).items() if merge.tokenizer else ()):
            src: Any = None
            if isinstance(spec.source, ZeroEmbedding):
                src = "zero"
            elif isinstance(spec.source, ModelTokenEmbedding):
                m = self.index[spec.source.model]
                src = ("row", m, spec.source.token_id) if spec.source.token_id is not None else ("token", m, spec.source.token)
            elif isinstance(spec.source, str):
                src = self.index[spec.source]
            tokens[text] = {"source": src, "force": spec.force}
        kind: str | int = source if source in ("base", "union") else self.index[source]
        try:
            return plan_vocabulary(
                [m.path for m in self.models],
                [dict(m.config) for m in self.models],
                base,
                kind,
                tokens,
                merge.tokenizer.pad_to_multiple_of if merge.tokenizer else None,
                frozenset({base}) if merge.weightless_base() else frozenset(),
            )
        except (OSError, ValueError) as e:
            raise MergeError(
                f"cannot build the output tokenizer: {' '.join(str(e).split())[:200]}",
                where=f"{self.loaded.where('tokenizer_source' if merge.tokenizer_source else 'tokenizer')}: tokenizer",
                fix="every parent needs its tokenizer files (tokenizer.json or tokenizer.model, tokenizer_config.json)",
            ) from None

    def _where_model(self, ref: str) -> str:
        for loc in _ref_locs(self.merge, ref):
            return f"{self.loaded.where(*loc)}: {'.'.join(map(str, loc))}"
        return str(self.loaded.path)

    def _slices(self) -> list[OutputSlice]:
        if self.merge.slices is not None:
            return list(self.merge.slices)
        sources = []
        base = self.merge.base_model
        for m in self.merge.models or []:
            sources.append(
                InputSlice(model=m.model, layer_range=(0, _num_layers(self.models[self.index[m.model]])), parameters=m.parameters)
            )
        if base and base not in [s.model for s in sources]:
            sources.append(InputSlice(model=base, layer_range=(0, _num_layers(self.models[self.index[base]]))))
        return [OutputSlice(sources=sources)]

    def _legacy(self, out_slice: OutputSlice) -> bool:
        slices = self.merge.slices or []
        return any(slices[i] is out_slice for i in self.merge.legacy_slerp_slices())

    def _base_of(self, out_slice: OutputSlice) -> str | None:
        return out_slice.base_model or self.merge.base_model

    def _params(
        self, out_name: str, in_names: list[str], t: float, out_slice: OutputSlice, refs: list[str], base: str | None
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
        params: dict[str, Any] = {}
        for p in self.method.params:
            value = lookup_parameter(self.merge, p.name, tensor_name=out_name, t=t, out_slice=out_slice)
            if value is None:
                if p.required:
                    raise RecipeError(
                        f"parameter '{p.name}' has no value for tensor {out_name}",
                        where=f"{self.loaded.where('parameters')}: parameters",
                        fix=f"add a default, e.g. '- value: ...' without a filter, for '{p.name}'",
                    )
                value = p.default
            params[p.name] = as_bool(value) if p.check is is_bool else value
        per_model = []
        for ref, in_name in zip(refs, in_names, strict=True):
            values: dict[str, Any] = {}
            for p in self.method.model_params:
                value = lookup_parameter(
                    self.merge, p.name, tensor_name=in_name, t=t, out_slice=out_slice, model=ref
                )
                if value is None:
                    if p.required and ref != base:
                        raise RecipeError(
                            f"parameter '{p.name}' has no value for model {ref} (tensor {in_name})",
                            where=self._where_model(ref),
                            fix=f"add parameters: {{{p.name}: ...}} to the model, or a global default",
                        )
                    value = None if p.required else p.default
                values[p.name] = as_bool(value) if p.check is is_bool and value is not None else value
            per_model.append(values)
        return params, tuple(per_model)

    def _input(self, ref: str, name: str) -> tuple[str, TensorInfo]:
        tensors = self.models[self.index[ref]].files.tensors
        if name in tensors:
            return name, tensors[name]
        if name == TIED_OUTPUT:
            for alt in ("model.embed_tokens.weight", "transformer.wte.weight"):
                if alt in tensors:
                    return alt, tensors[alt]
        raise MergeError(
            f"tensor {name} is missing from {ref}",
            where=self._where_model(ref),
            fix="all parents must share the architecture; check the model reference",
        )

    def _add(
        self, out_name: str, in_names: list[str], refs: list[str], t: float, out_slice: OutputSlice, layer: int | None
    ) -> None:
        base = self._base_of(out_slice)
        # mergekit keys a tensor's inputs by model: a duplicate is one input (first position,
        # last tensor name, as its dict of inputs keeps them).
        by_ref = dict(zip(refs, in_names, strict=True))
        refs, in_names = list(by_ref), list(by_ref.values())
        infos = []
        sources = []
        resolved_names = []
        for ref, in_name in zip(refs, in_names, strict=True):
            name, info = self._input(ref, in_name)
            infos.append(info)
            sources.append((self.index[ref], name))
            resolved_names.append(name)
        is_embed = any(e in out_name for e in EMBED_NAMES)
        shapes = {i.shape for i in infos}
        shape = infos[0].shape
        if is_embed and self.vocab is not None and len(shape) == 2 and len({s[1:] for s in shapes}) == 1:
            shape = (self.vocab.size, shape[1])  # rows re-indexed to the output vocabulary
        elif len(shapes) > 1:
            if is_embed and all(len(s) == 2 for s in shapes):
                shape = (min(s[0] for s in shapes), min(s[1] for s in shapes))
                self.notes.append(f"{out_name}: parents differ in size; using the common submatrix {list(shape)}")
            else:
                a, b = infos[0], next(i for i in infos if i.shape != infos[0].shape)
                ra, rb = refs[infos.index(a)], refs[infos.index(b)]
                raise MergeError(
                    f"tensor {out_name} has shape {list(a.shape)} in {ra} but {list(b.shape)} in {rb}",
                    where=self._where_model(rb),
                    fix="merge models of the same architecture and size",
                )
        base_pos = refs.index(base) if base in refs else None
        if base_pos is None and self._legacy(out_slice) and len(refs) == 2:
            base_pos = 1  # mergekit <= 0.0.3.2: SLERP from the slice's second source to its first
        params, model_params = self._params(out_name, resolved_names, t, out_slice, refs, base)
        if self.merge.out_dtype:
            out_dtype = dtype_name(self.merge.out_dtype)
        else:
            # What mergekit writes without out_dtype: the method's result for the load dtype
            # (the load dtype for most; float32 for ramplus_tl and arcee_fusion).
            load = dtype_name(self.merge.dtype) if self.merge.dtype else infos[base_pos if base_pos is not None else 0].dtype
            out_dtype = self.method.result_dtype(load)
        self._check_method(out_name, params, model_params, base_pos)
        self.tensors.append(
            TensorPlan(
                out=PlannedTensor(out_name, out_dtype, tuple(shape)),
                sources=tuple(sources),
                base=base_pos,
                params=params,
                model_params=model_params,
                is_embed=is_embed,
                layer=layer,
                t=t,
            )
        )

    def _check_method(
        self, out_name: str, params: dict[str, Any], model_params: tuple[dict[str, Any], ...], base_pos: int | None
    ) -> None:
        """The method's own cross-parameter check, on the values this tensor will get."""
        if self.method.check is None:
            return
        others = [p for i, p in enumerate(model_params) if i != base_pos]
        problem = self.method.check(len(others), base_pos is not None, params, others)
        if problem is not None:
            raise RecipeError(
                f"{problem.message} ({self.method.name}, tensor {out_name})",
                where=f"{self.loaded.where()}: {problem.param}",
                fix=problem.fix,
            )

    def _follow_file_order(self) -> None:
        """When every output tensor is the same-named tensor of one first parent, write them in
        that parent's file order: reads become sequential (and the engine can hash the parents'
        files on the way); any order is a valid safetensors layout."""
        firsts = {t.sources[0][0] for t in self.tensors}
        if len(firsts) != 1 or any(t.sources[0][1] != t.name for t in self.tensors):
            return
        files = self.models[firsts.pop()].files
        index = {p: i for i, p in enumerate(files.files)}
        self.tensors.sort(key=lambda t: (index[files.tensors[t.name].path], files.tensors[t.name].offset))

    # -- the plan -----------------------------------------------------------------------

    def plan(self) -> MergePlan:
        slices = self._slices()
        first_refs = [s.model for s in slices[0].sources]
        last_refs = [s.model for s in slices[-1].sources]
        base0 = self._base_of(slices[0])
        template_ref = base0 if base0 is not None and base0 in first_refs else first_refs[0]
        template = self.models[self.index[template_ref]].files.tensors
        non_layer = [n for n in template if not LAYER_RE.match(n)]
        pre = [n for n in non_layer if any(e in n for e in ("embed_tokens", "wte", "embed_in"))]
        post = [n for n in non_layer if n not in pre]
        for name in pre:
            self._add(name, [name] * len(first_refs), first_refs, 0.0, slices[0], None)
        out_layer = 0
        prefix_out: str | None = None
        for s_i, out_slice in enumerate(slices):
            n = out_slice.sources[0].layer_range[1] - out_slice.sources[0].layer_range[0]
            refs = [src.model for src in out_slice.sources]
            for src_i, src in enumerate(out_slice.sources):
                have = _num_layers(self.models[self.index[src.model]])
                if src.layer_range[1] > have:
                    loc = ("slices", s_i, "sources", src_i, "layer_range")
                    raise RecipeError(
                        f"layer_range {list(src.layer_range)} goes beyond {src.model}, which has {have} layers",
                        where=f"{self.loaded.where(*loc)}: {'.'.join(map(str, loc))}",
                        fix=f"use an end of at most {have}",
                    )
            for offset in range(n):
                t = offset / (n - 1) if n > 1 else 1.0
                first = out_slice.sources[0]
                layer_in = first.layer_range[0] + offset
                template_layer = self.layers[first.model].get(layer_in, [])
                for prefix, rest, _full in template_layer:
                    prefix_out = prefix
                    in_names = [f"{prefix}.{src.layer_range[0] + offset}.{rest}" for src in out_slice.sources]
                    self._add(f"{prefix}.{out_layer}.{rest}", in_names, refs, t, out_slice, out_layer)
                out_layer += 1
        del prefix_out
        for name in post:
            self._add(name, [name] * len(last_refs), last_refs, 0.0, slices[-1], None)
        self._follow_file_order()
        base_ref = self.merge.base_model
        base_index = self.index[base_ref] if base_ref else None
        tok_ref = self.merge.vocabulary_source
        if tok_ref in (None, "base", "union"):
            tok_index = base_index if base_index is not None else self.index[first_refs[0]]
        else:
            assert tok_ref is not None
            tok_index = self.index[tok_ref]
        config_ref = base_ref if base_ref else first_refs[0]
        out_config = dict(self.models[self.index[config_ref]].config)
        if config_ref in self.loaded.architectures:  # mergekit's override_architecture of the config's model
            out_config["architectures"] = [self.loaded.architectures[config_ref]]
        out_config["num_hidden_layers"] = out_layer
        out_dtype = self.out_dtype_override or (self.tensors[0].out.dtype if self.tensors else "BF16")
        torch_name = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}.get(out_dtype, out_dtype.lower())
        if "torch_dtype" in out_config and "dtype" not in out_config:
            out_config["torch_dtype"] = torch_name
        else:
            out_config["dtype"] = torch_name
        embed = next((t for t in self.tensors if "embed_tokens" in t.name), None)
        if embed is not None and "vocab_size" in out_config:
            out_config["vocab_size"] = embed.out.shape[0]
        return MergePlan(
            recipe=self.loaded,
            method=self.method,
            models=self.models,
            tensors=self.tensors,
            out_config=out_config,
            out_dtype=out_dtype,
            load_dtype=dtype_name(self.merge.dtype) if self.merge.dtype else None,
            layer_count=out_layer,
            base_model=base_index,
            tokenizer_model=tok_index,
            notes=self.notes,
            vocab=self.vocab,
        )


def _ref_locs(merge: MergeConfig, ref: str) -> list[tuple[str | int, ...]]:
    out: list[tuple[str | int, ...]] = []
    for i, m in enumerate(merge.models or []):
        if m.model == ref:
            out.append(("models", i, "model"))
    for i, s in enumerate(merge.slices or []):
        for j, src in enumerate(s.sources):
            if src.model == ref:
                out.append(("slices", i, "sources", j, "model"))
    if merge.base_model == ref:
        out.append(("base_model",))
    if merge.tokenizer_source == ref:
        out.append(("tokenizer_source",))
    return out


def make_plan(loaded: LoadedRecipe, models: dict[str, ResolvedModel]) -> MergePlan:
    """Plan a merge from a validated recipe and its resolved parents (keyed by reference)."""
    return Planner(loaded, models).plan()
