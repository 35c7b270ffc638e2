"""transformers' own model, one unit of weights in memory at a time.

The model is built from its config.json by transformers (``AutoModelForCausalLM.from_config``)
with every parameter on the meta device (buffers such as rotary frequencies stay real, as
transformers computes them). Each *unit* (a decoder layer, the embedding, the final norm,
the head) gets a forward pre-hook that reads its tensors from the safetensors files and a
forward hook that sends them back to meta, so the model's own ``forward`` runs with one
unit's weights resident: any architecture transformers supports runs the code it runs.
FP8 variants are loaded as vLLM computes them (publisher.check.fp8sim).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.check.fp8sim import (
    ScaleLayout,
    dequantize,
    fake_quant_input,
    layout_of,
    weight_error,
)
from publisher.check.reads import ReadsFor, TensorReads, file_reads
from publisher.errors import PublisherError
from publisher.lazy import torch
from publisher.tensors import ModelFiles, TensorInfo

_LIST_ITEM = re.compile(r"\.\d+$")


class MeasureError(PublisherError):
    """The forward pass cannot run, or produced NaN/Inf: the build is broken."""


class ModelBroken(MeasureError):
    """A unit's output is not finite, or an FP8 weight does not dequantize to its merged weight."""


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter registered inside the block lives on the meta device; buffers stay real."""
    original = torch.nn.Module.register_parameter

    def register(module: torch.nn.Module, name: str, param: torch.nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None:
            p = module._parameters[name]
            assert p is not None
            module._parameters[name] = torch.nn.Parameter(p.to("meta"), requires_grad=False)

    torch.nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_meta_model(folder: Path, dtype: torch.dtype) -> Any:
    """transformers' causal LM for ``folder``'s config, weights on meta (nothing allocated)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # we load FP8 ourselves, as vLLM computes it
    with parameters_on_meta():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def units_of(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Modules loaded and freed together: each item of a ModuleList, and each other module owning parameters."""
    units: list[tuple[str, torch.nn.Module]] = []
    covered: list[str] = []
    for name, module in model.named_modules():
        if any(name == c or name.startswith(c + ".") for c in covered):
            continue
        in_list = _LIST_ITEM.search(name) is not None and any(True for _ in module.parameters())
        owns = any(True for _ in module.parameters(recurse=False))
        if in_list or owns:
            units.append((name, module))
            covered.append(name)
    return units


@dataclass
class LoadStats:
    tensors: int = 0
    bytes_read: int = 0
    fp8_weight_error: float = 0.0
    worst_tensor: str | None = None


@dataclass
class WeightSource:
    """Where a model's tensors are, and how to turn them into the float weights a unit runs with.

    ``files`` gives the tensors' names, dtypes and shapes (the safetensors headers); ``reader``
    gives their bytes: read from those files, or computed again from the parents where the
    files are header-only stubs of a streaming build (check/reads.py).
    """

    files: ModelFiles
    dtype: torch.dtype
    device: str
    layout: ScaleLayout | None = None  # set for an FP8 variant
    reference: ModelFiles | None = None  # the merged model, to check each FP8 weight against
    reader: TensorReads = field(default_factory=file_reads)
    reference_reader: TensorReads | None = None  # the merged model's bytes (default: ``reader``)
    stats: LoadStats = field(default_factory=LoadStats)
    quantized_modules: set[str] = field(default_factory=set)

    @classmethod
    def open(
        cls, folder: Path, dtype: torch.dtype, device: str, reference: Path | None = None, reads: ReadsFor | None = None
    ) -> WeightSource:
        files = ModelFiles.open(folder)
        layout = None
        if "quantization_config" in files.config:
            try:
                layout = layout_of(dict(files.config))
            except ValueError as e:
                raise MeasureError(f"quantization_config {e}", where=str(Path(folder) / "config.json")) from None
        ref = ModelFiles.open(reference) if reference is not None and layout is not None else None
        if reads is None:
            return cls(files, dtype, device, layout, ref)
        ref_reader = reads(Path(reference)) if ref is not None and reference is not None else None
        return cls(files, dtype, device, layout, ref, reader=reads(Path(folder)), reference_reader=ref_reader)

    def _info(self, name: str, tied_to: str | None) -> TensorInfo:
        info = self.files.tensors.get(name)
        if info is None and tied_to is not None:
            info = self.files.tensors.get(tied_to)
        if info is None:
            raise MeasureError(
                f"tensor {name} is missing (transformers' model for this config needs it)",
                where=str(self.files.root),
                fix="rebuild; the safetensors files do not hold what config.json describes",
            )
        return info

    def read(self, name: str, tied_to: str | None = None) -> torch.Tensor:
        """The float tensor for parameter ``name`` (FP8 weights dequantized with their scales)."""
        info = self._info(name, tied_to)
        raw = self.reader.read(info)
        self.stats.tensors += 1
        self.stats.bytes_read += info.nbytes
        if info.dtype == "F8_E4M3" and self.layout is not None:
            scale_info = self._info(name + "_scale", None)
            scale = self.reader.read(scale_info)
            value = dequantize(raw, scale, self.layout, self.dtype)
            self.quantized_modules.add(name.removesuffix(".weight"))
            self._check_against_reference(name, value)
        else:
            value = raw.to(self.dtype)
        del raw
        return value.to(self.device) if self.device != "cpu" else value

    def _check_against_reference(self, name: str, value: torch.Tensor) -> None:
        if self.reference is None or self.layout is None:
            return
        ref_info = self.reference.tensors.get(name)
        if ref_info is None or tuple(ref_info.shape) != tuple(value.shape):
            return
        err = 0.0
        reader = self.reference_reader or self.reader
        for r0, r1 in _bands(ref_info.shape[0], self.layout):  # bounded temporaries on 7B-wide weights
            merged = reader.read(ref_info, rows=(r0, r1))
            err = max(err, weight_error(merged, value[r0:r1], self.layout))
            del merged
        if self.stats.worst_tensor is None or err > self.stats.fp8_weight_error:
            self.stats.fp8_weight_error, self.stats.worst_tensor = err, name

    def input_scale(self, module: str) -> torch.Tensor | None:
        info = self.files.tensors.get(f"{module}.input_scale")
        return self.reader.read(info).to(self.device) if info is not None else None

    def close(self) -> None:
        self.reader.close()
        if self.reference_reader is not None:
            self.reference_reader.close()


def _bands(rows: int, layout: ScaleLayout, band: int = 2048) -> list[tuple[int, int]]:
    """Row ranges whose scale groups are whole (a per-tensor scale needs the whole tensor)."""
    if layout.strategy == "tensor":
        return [(0, rows)]
    step = max(band - band % layout.block[0], layout.block[0]) if layout.strategy == "block" and layout.block else band
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None


def return_freed_memory() -> None:
    """Hand the pages of a freed unit back to the OS (glibc keeps them resident otherwise).

    A 7B layer's float32 weights and activations are freed after each unit, but glibc's heap
    only shrinks from its top; small objects allocated meanwhile pin it, so without this the
    resident set grows with every layer (2.77 GiB after 32 layers of a 7B, where one layer's
    working set is ~1.6 GiB).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _tied_name(model: Any, param: str) -> str | None:
    """A tied head's weight lives under the embedding's name in the files."""
    if param != "lm_head.weight":
        return None
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embed is None:
        return None
    for name, module in model.named_modules():
        if module is embed:
            return f"{name}.weight"
    return None


class StreamedModel:
    """``model(input_ids)`` with each unit's weights read just before it runs and freed right after."""

    def __init__(self, folder: Path, source: WeightSource, *, check_finite: bool = True) -> None:
        self.folder = Path(folder)
        self.source = source
        self.model = build_meta_model(self.folder, source.dtype)
        self.check_finite = check_finite
        self._handles: list[Any] = []
        self.unit_seconds: dict[str, float] = {}
        self._move_buffers(source.device)
        for name, unit in units_of(self.model):
            self._handles.append(unit.register_forward_pre_hook(self._loader(name, unit)))
            self._handles.append(unit.register_forward_hook(self._freer(name, unit)))

    def _move_buffers(self, device: str) -> None:
        if device == "cpu":
            return
        for module in self.model.modules():
            for key, buf in list(module._buffers.items()):
                if buf is not None:
                    module._buffers[key] = buf.to(device)

    def _loader(self, unit_name: str, unit: torch.nn.Module) -> Callable[..., None]:
        def load(module: torch.nn.Module, args: Any) -> None:
            t0 = time.monotonic()
            prefix = f"{unit_name}." if unit_name else ""
            for pname, _ in list(unit.named_parameters()):
                full = prefix + pname
                owner_name, _, leaf = pname.rpartition(".")
                owner = unit.get_submodule(owner_name) if owner_name else unit
                value = self.source.read(full, _tied_name(self.model, full))
                owner._parameters[leaf] = torch.nn.Parameter(value, requires_grad=False)
            self._install_activation_quant(unit_name, unit)
            self.unit_seconds[unit_name] = self.unit_seconds.get(unit_name, 0.0) + time.monotonic() - t0

        return load

    def _install_activation_quant(self, unit_name: str, unit: torch.nn.Module) -> None:
        layout = self.source.layout
        if layout is None or layout.activation is None:
            return
        prefix = f"{unit_name}." if unit_name else ""
        for sub_name, sub in unit.named_modules():
            full = prefix + sub_name if sub_name else unit_name
            if full not in self.source.quantized_modules or not isinstance(sub, torch.nn.Linear):
                continue
            scale = self.source.input_scale(full)

            def quant_input(mod: torch.nn.Module, args: tuple[Any, ...], scale: Any = scale) -> tuple[Any, ...]:
                return (fake_quant_input(args[0], layout, scale), *args[1:])

            self._handles.append(sub.register_forward_pre_hook(quant_input))
            sub._publisher_fp8_hook = self._handles[-1]

    def _freer(self, unit_name: str, unit: torch.nn.Module) -> Callable[..., None]:
        def free(module: torch.nn.Module, args: Any, output: Any) -> None:
            for sub in unit.modules():
                hook = getattr(sub, "_publisher_fp8_hook", None)
                if hook is not None:
                    hook.remove()
                    del sub._publisher_fp8_hook
                for key, p in list(sub._parameters.items()):
                    if p is not None:
                        sub._parameters[key] = torch.nn.Parameter(p.to("meta"), requires_grad=False)
            return_freed_memory()
            if self.check_finite:
                tensor = output[0] if isinstance(output, tuple) else output
                if isinstance(tensor, torch.Tensor) and not bool(torch.isfinite(tensor).all()):
                    bad = "NaN" if bool(torch.isnan(tensor).any()) else "Inf"
                    raise ModelBroken(
                        f"{unit_name} produces {bad} on the evaluation text",
                        where=str(self.folder),
                        fix="the weights of this layer are broken (overflow or NaN); check the parents and the merge parameters",
                    )

        return free

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Float32 logits ``[tokens, vocab]`` for one sequence."""
        ids = input_ids.reshape(1, -1).to(self.source.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, use_cache=False)
        return out.logits[0].float()

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.source.close()
