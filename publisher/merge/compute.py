"""One output tensor of the merge, computed into memory: read its inputs, run the method, transform.

The engine's pool threads call ``TensorCompute.compute`` for each planned tensor; a streaming
build's measured pass (``publisher/check/recompute.py``) calls the same code again, one tensor
at a time, so the weights it measures are computed exactly as the published ones were. The
sha256 of each output's bytes (``tensor_sha256``) is what ties the two together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from publisher.errors import MergeError
from publisher.lazy import torch
from publisher.merge.io import TensorSource
from publisher.merge.methods import TensorJob
from publisher.merge.plan import MergePlan, TensorPlan
from publisher.tensors import tensor_bytes, torch_dtype

Outputs = list[tuple[str, "torch.Tensor"]]


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of the bytes a tensor is written as (what a shard holds for it)."""
    return hashlib.sha256(tensor_bytes(tensor)).hexdigest() if tensor.numel() else hashlib.sha256().hexdigest()


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """NaN/Inf anywhere makes the min or the max non-finite (aminmax is ~30x faster than isfinite)."""
    if not tensor.is_floating_point() or tensor.dtype.itemsize < 2 or tensor.numel() == 0:
        return
    lo, hi = torch.aminmax(tensor)
    if bool(torch.isfinite(lo) & torch.isfinite(hi)):
        return
    bad = int((~torch.isfinite(tensor)).sum())
    raise MergeError(
        f"tensor {name} has {bad} NaN/Inf values after merging",
        fix="check the parents' values and the method's parameters (e.g. weights summing to zero)",
    )


@dataclass
class TensorCompute:
    """The merge of one planned tensor from its sources (LoRA, vocabulary alignment, method, dtype)."""

    plan: MergePlan
    source: TensorSource

    def __post_init__(self) -> None:
        self.seed = self.plan.recipe.recipe.seed
        self.compute_dtype = torch.float32 if self.plan.recipe.recipe.compute_dtype == "float32" else None

    def merged(self, t: TensorPlan) -> torch.Tensor:
        """The merged tensor in its output dtype, checked for shape and NaN/Inf."""
        inputs = []
        for model_index, name in t.sources:
            info = self.plan.models[model_index].files.tensors[name]
            x = self.source.read(info)
            lora = self.plan.models[model_index].lora
            if lora is not None:  # a LoRA parent: the adapter merged into this tensor (publisher/lora.py)
                x = lora.apply(name, x)
            if self.compute_dtype is not None:
                x = x.to(self.compute_dtype)
            elif self.plan.load_dtype is not None:
                x = x.to(torch_dtype(self.plan.load_dtype))
            inputs.append(x)
        if t.is_embed and self.plan.vocab is not None and inputs and inputs[0].dim() == 2:
            # rows re-indexed to the output vocabulary (tokenizer_source / tokenizer:, merge/vocab.py)
            inputs = self.plan.vocab.align(inputs, [m for m, _ in t.sources])
        job = TensorJob(
            name=t.name,
            tensors=inputs,
            models=[self.plan.models[m].ref for m, _ in t.sources],
            base=t.base,
            params=dict(t.params),
            model_params=[dict(p) for p in t.model_params],
            seed=self.seed,
            compute_dtype=self.compute_dtype,
            is_embed=t.is_embed,
        )
        out = self.plan.method.fn(job)
        del inputs, job
        out = out.to(torch_dtype(t.out.dtype))
        if tuple(out.shape) != t.out.shape:
            raise MergeError(f"tensor {t.name}: method produced {list(out.shape)}, planned {list(t.out.shape)}")
        check_finite(t.name, out)
        return out
