"""A model folder's files other than its tensors: config.json, tokenizer, generation config, recipe.

``publisher build`` writes them into each variant's folder once the engine is done (and the
multi-stage plan for a stage's folder); the card is rendered after the checks, elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.chat_templates import resolve_template
from publisher.manifest import RECIPE_FILE
from publisher.tensors import FileDigest, write_file_atomic

if TYPE_CHECKING:
    from publisher.merge.engine import VariantOutput
    from publisher.merge.plan import MergePlan

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)


def variant_config_of(plan: MergePlan, variant: VariantOutput) -> dict[str, object]:
    if variant.name == "merged":
        return plan.out_config
    from publisher.quantize.variants import variant_config

    return variant_config(plan, variant)


def write_side_files(plan: MergePlan, variant: VariantOutput, folder: Path, recipe_text: bytes) -> list[FileDigest]:
    """config, tokenizer, generation config and the recipe: everything but tensors and the card."""
    out: list[FileDigest] = []
    config = variant_config_of(plan, variant)
    out.append(write_file_atomic(folder / "config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
    tok_src = plan.models[plan.tokenizer_model].path
    chat = resolve_template(plan.recipe.merge.chat_template, [m.path for m in plan.models])
    new_tokenizer = plan.vocab is not None and plan.vocab.new_tokenizer
    if new_tokenizer:
        out += write_vocab_tokenizer(plan, folder, chat)
    for name in TOKENIZER_FILES if not new_tokenizer else ():
        src = tok_src / name
        if not src.is_file():
            continue
        data = src.read_bytes()
        if name == "tokenizer_config.json" and chat is not None:
            cfg = json.loads(data)
            cfg["chat_template"] = chat
            data = (json.dumps(cfg, indent=2) + "\n").encode()
        if name in ("chat_template.jinja", "chat_template.json") and chat is not None:
            continue  # the recipe's template (in tokenizer_config.json) replaces the parent's
        out.append(write_file_atomic(folder / name, data))
    config_model = plan.models[plan.base_model if plan.base_model is not None else plan.tensors[0].sources[0][0]]
    gen = config_model.path / "generation_config.json"
    if gen.is_file():
        out.append(write_file_atomic(folder / "generation_config.json", gen.read_bytes()))
    out.append(write_file_atomic(folder / RECIPE_FILE, recipe_text))
    return out


def write_vocab_tokenizer(plan: MergePlan, folder: Path, chat: str | None) -> list[FileDigest]:
    """The output tokenizer of a vocabulary merge, as transformers saves it."""
    import tempfile

    assert plan.vocab is not None
    tok = plan.vocab.tokenizer
    if chat is not None:
        tok.chat_template = chat
    out = []
    with tempfile.TemporaryDirectory(prefix="publisher-tokenizer-") as tmp:
        tok.save_pretrained(tmp)
        for f in sorted(Path(tmp).iterdir()):
            out.append(write_file_atomic(folder / f.name, f.read_bytes()))
    return out
