"""Deterministic stand-in PEFT LoRA adapters for the stand-in models (tests, oracle, demos).

An adapter folder as PEFT's ``save_pretrained`` writes it: ``adapter_config.json`` and
``adapter_model.safetensors`` with ``base_model.model.<module>.lora_A.weight`` ([r, in]),
``lora_B.weight`` ([out, r]), ``lora_embedding_A`` / ``_B`` for embeddings and full tensors
for ``modules_to_save``. Values are seeded by (seed, tensor name), so an adapter is the same
bytes everywhere. A separate module from standins.py so that the models it generates (and the
oracle digests of them) never change when adapters do.
"""

from __future__ import annotations

import json
from pathlib import Path

from publisher.determinism import tensor_seed
from publisher.lazy import torch
from publisher.standins import MistralShape, tensor_plan
from publisher.tensors import DTYPES, TORCH_TO_DTYPE, PlannedTensor, ShardWriter

PREFIX = "base_model.model."


def _draw(seed: int, name: str, shape: tuple[int, ...], std: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(tensor_seed(seed, name))
    return torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std)


def generate_lora(
    out: Path,
    shape: MistralShape,
    *,
    seed: int,
    r: int = 4,
    alpha: float = 8,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    rslora: bool = False,
    modules_to_save: tuple[str, ...] = (),
    embed: bool = False,
    dtype: str = "F32",
    base_path: str = "base",
) -> Path:
    """Write an adapter for a stand-in of ``shape``: LoRA on ``targets`` (and the embedding)."""
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    torch_dtype = DTYPES[dtype][0]
    for t in tensor_plan(shape):
        module = t.name.removesuffix(".weight")
        leaf = module.rsplit(".", 1)[-1]
        if leaf in modules_to_save:
            tensors[f"{PREFIX}{t.name}"] = _draw(seed, t.name, t.shape, 0.02).to(DTYPES["BF16"][0])
        elif embed and leaf == "embed_tokens":
            vocab, hidden = t.shape
            tensors[f"{PREFIX}{module}.lora_embedding_A"] = _draw(seed, f"{module}.A", (r, vocab), 0.1).to(torch_dtype)
            tensors[f"{PREFIX}{module}.lora_embedding_B"] = _draw(seed, f"{module}.B", (hidden, r), 0.1).to(torch_dtype)
        elif leaf in targets and len(t.shape) == 2:
            rows, cols = t.shape
            tensors[f"{PREFIX}{module}.lora_A.weight"] = _draw(seed, f"{module}.A", (r, cols), 0.1).to(torch_dtype)
            tensors[f"{PREFIX}{module}.lora_B.weight"] = _draw(seed, f"{module}.B", (rows, r), 0.1).to(torch_dtype)
    planned = [PlannedTensor(name, TORCH_TO_DTYPE[x.dtype], tuple(x.shape)) for name, x in tensors.items()]
    writer = ShardWriter(out / "adapter_model.safetensors", planned, {"format": "pt"})
    for name, x in tensors.items():
        writer.write(name, x)
    writer.close(fsync=False)
    config = {
        "peft_type": "LORA",
        "base_model_name_or_path": base_path,
        "r": r,
        "lora_alpha": alpha,
        "use_rslora": rslora,
        "target_modules": sorted({*targets, *(["embed_tokens"] if embed else [])}),
        "modules_to_save": list(modules_to_save) or None,
        "fan_in_fan_out": False,
        "bias": "none",
        "lora_dropout": 0.0,
        "use_dora": False,
        "inference_mode": True,
        "rank_pattern": {},
        "alpha_pattern": {},
        "task_type": "CAUSAL_LM",
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def generate_adapters(root: Path, shape: MistralShape) -> dict[str, Path]:
    """``lora1`` (q/v, alpha/r) and ``lora2`` (rsLoRA, q/k/v/o and MLP, the embedding, lm_head saved)."""
    return {
        "lora1": generate_lora(root / "lora1", shape, seed=3001, r=4, alpha=8),
        "lora2": generate_lora(
            root / "lora2",
            shape,
            seed=3002,
            r=8,
            alpha=16,
            targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            rslora=True,
            modules_to_save=("lm_head",),
            embed=True,
        ),
    }
