"""LoRA references (``base+lora``): the PEFT adapter applied tensor by tensor while merging.

Bytes against mergekit (which merges the adapter with PEFT first) are in the oracle cases
``lora_*`` (tests/merge/test_mergekit_agreement.py); here: the arithmetic, what is refused,
and that the manifest and the card name both the base and the adapter."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from publisher.build import BuildOptions, build
from publisher.errors import SourceError
from publisher.lora import open_adapter
from publisher.recipe import load_recipe
from publisher.standins import TINY
from publisher.standins_lora import generate_lora

Q = "model.layers.3.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "plain": generate_lora(root / "plain", TINY, seed=7, r=4, alpha=8),
        "rs": generate_lora(root / "rs", TINY, seed=8, r=16, alpha=8, rslora=True, modules_to_save=("lm_head",), embed=True),
    }


def test_apply_is_w_plus_scaled_ba(adapters: dict[str, Path], family: dict[str, Path]) -> None:
    base = load_file(family["base"] / "model.safetensors")
    ad = load_file(adapters["plain"] / "adapter_model.safetensors")
    lora = open_adapter("plain", adapters["plain"], "test")
    got = lora.apply(Q, base[Q])
    untouched = lora.apply("model.norm.weight", base["model.norm.weight"])
    a = ad[f"base_model.model.{Q.removesuffix('.weight')}.lora_A.weight"]
    b = ad[f"base_model.model.{Q.removesuffix('.weight')}.lora_B.weight"]
    want = (base[Q].float() + (b.float() @ a.float()) * (8 / 4)).to(torch.bfloat16)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want) and not torch.equal(got, base[Q])
    assert torch.equal(untouched, base["model.norm.weight"])


def test_rslora_embeddings_and_saved_modules(adapters: dict[str, Path], family: dict[str, Path]) -> None:
    base = load_file(family["base"] / "model.safetensors")
    ad = load_file(adapters["rs"] / "adapter_model.safetensors")
    lora = open_adapter("rs", adapters["rs"], "test")
    assert lora.scale(Q) == pytest.approx(8 / math.sqrt(16))
    head = lora.apply("lm_head.weight", base["lm_head.weight"])
    emb = lora.apply("model.embed_tokens.weight", base["model.embed_tokens.weight"])
    assert torch.equal(head, ad["base_model.model.lm_head.weight"])  # modules_to_save replaces
    a, b = ad["base_model.model.model.embed_tokens.lora_embedding_A"], ad["base_model.model.model.embed_tokens.lora_embedding_B"]
    want = base["model.embed_tokens.weight"] + ((b @ a).T * 2.0).to(torch.bfloat16)
    assert torch.equal(emb, want)


def test_pattern_overrides_rank_and_alpha(adapters: dict[str, Path], tmp_path: Path) -> None:
    lora = open_adapter("plain", adapters["plain"], "test")
    lora.config = {**lora.config, "rank_pattern": {"q_proj": 2}, "alpha_pattern": {r"layers\.3\.self_attn\.q_proj": 6}}
    assert lora.scale(Q) == pytest.approx(6 / 2)
    assert lora.scale("model.layers.3.self_attn.v_proj.weight") == pytest.approx(8 / 4)


def test_pickle_and_dora_adapters_are_refused(adapters: dict[str, Path], tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text("{}")
    (pickled / "adapter_model.bin").write_bytes(b"\x80")
    with pytest.raises(SourceError, match="pickle adapter"):
        open_adapter("org/pickled", pickled, "recipe.yaml:3")
    dora = generate_lora(tmp_path / "dora", TINY, seed=9)
    cfg = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(SourceError, match="use_dora"):
        open_adapter("org/dora", dora, "recipe.yaml:3")


def test_build_bakes_the_adapter_and_records_both(
    recipe_file: Callable[..., Path], family: dict[str, Path], adapters: dict[str, Path], tmp_path: Path
) -> None:
    text = "merge_method: task_arithmetic\nbase_model: {base}\nmodels:\n  - model: {base}+{lora}\n    parameters: {weight: 1.0}\ndtype: bfloat16\n"
    path = recipe_file(text, base=family["base"], lora=adapters["plain"])
    out = tmp_path / "out"
    result = build(path, out, BuildOptions(threads=2, quiet=True))
    merged = load_file(out / "model.safetensors")
    base = load_file(family["base"] / "model.safetensors")
    baked = open_adapter("plain", adapters["plain"], "t").apply(Q, base[Q])
    # task arithmetic of one model: base + 1.0 * (baked - base), in bf16 like mergekit
    assert torch.equal(merged[Q], (base[Q] + (baked - base[Q]) * 1.0).to(torch.bfloat16))
    assert torch.equal(merged["model.norm.weight"], base["model.norm.weight"])
    lora_inputs = [i for i in result.manifest.inputs if i.lora is not None]
    assert len(lora_inputs) == 1 and lora_inputs[0].lora.ref == "plain"  # type: ignore[union-attr]
    assert lora_inputs[0].ref == "base+plain"  # portable: folder names, never this machine's paths
    published = load_recipe(out / "recipe.yaml").merge
    assert [m.model for m in published.models or []] == ["base+plain"]
    assert {f.path for f in lora_inputs[0].files} >= {"adapter_model.safetensors", "adapter_config.json"}
    card = (out / "README.md").read_text()
    assert "base+plain" in card and str(tmp_path) not in card
