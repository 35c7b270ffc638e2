"""A SLERP slice whose base model is none of its sources, as published configs of Dec 2023 /
Jan 2024 (mergekit <= 0.0.3.2) write it: a warning, not a refusal (``--strict`` refuses).

mergekit v0.0.3.2 interpolated from the slice's second source (t = 0) to its first and took
config.json and the tokenizer from the base model, reading none of its weights. mergekit 0.1.5
computes that same SLERP when the second source is named the base: the
``slerp_second_source_as_base`` fixture (0.1.5's bytes) must equal ours on the original config,
bit for bit. (The ``v0032_slerp_base_outside_sources`` fixture, v0.0.3.2's own output, is built
by test_mergekit_agreement.py like every case.)"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

from publisher.build import BuildOptions, build
from publisher.standins_vocab import generate_vocab_family

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mergekit"
REFERENCE = FIXTURES / "slerp_second_source_as_base"
# the reference's config (sources FAMILY_BF16/a, FAMILY_BF16/b) with the family's base instead
LEGACY_SLERP = {**yaml.safe_load((REFERENCE / "config.yml").read_text()), "base_model": "FAMILY_BF16/base"}
MARK = 4242  # model_max_length / max_position_embeddings only the base model's files carry


def _donor_family(family: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    """The session family (== the oracle's FAMILY_BF16, checked by digest) with a base whose
    config.json and tokenizer_config.json are marked, so the output shows where they came from."""
    meta = json.loads((FIXTURES / "family.json").read_text())["family"]["FAMILY_BF16"]
    for name in ("a", "b"):
        got = hashlib.sha256((family[name] / "model.safetensors").read_bytes()).hexdigest()
        assert got == meta[name], "stand-ins changed: python tests/oracle/regenerate.py"
    base = tmp_path / "base"
    shutil.copytree(family["base"], base)
    for file, key in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        data = json.loads((base / file).read_text())
        data[key] = MARK
        (base / file).write_text(json.dumps(data))
    return {"a": str(family["a"]), "b": str(family["b"]), "base": str(base)}


def _write(config: dict[str, Any], fam: dict[str, str], path: Path) -> Path:
    text = yaml.safe_dump(config, sort_keys=False)
    for name, folder in fam.items():
        text = text.replace(f"FAMILY_BF16/{name}\n", f"{folder}\n")
    path.write_text(text)
    return path


def _bits(x: torch.Tensor) -> bytes:
    return x.contiguous().view(torch.uint8).numpy().tobytes()


def test_same_bytes_as_mergekit_015_with_the_second_source_as_base(family: dict[str, Path], tmp_path: Path) -> None:
    fam = _donor_family(family, tmp_path)
    recipe = _write(LEGACY_SLERP, fam, tmp_path / "legacy.yml")
    out = tmp_path / "out"
    build(recipe, out, BuildOptions(threads=2, quiet=True, render_cards=False))

    ours, ref = load_file(out / "model.safetensors"), load_file(REFERENCE / "model.safetensors")
    assert sorted(ours) == sorted(ref)
    differ = [n for n in ref if ours[n].dtype != ref[n].dtype or _bits(ours[n]) != _bits(ref[n])]
    assert not differ, f"{len(differ)} tensors differ from mergekit 0.1.5 with base_model = the second source: {differ[:5]}"
    # config.json and the tokenizer come from the declared base model, not from a source
    config = json.loads((out / "config.json").read_text())
    assert config["max_position_embeddings"] == MARK
    assert config["num_hidden_layers"] == 32
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == MARK


def test_the_direction_matters(family: dict[str, Path], tmp_path: Path) -> None:
    """The reference is not symmetric in the two sources: building from the first source instead
    (base = a) gives other bytes, so the equality above pins the direction."""
    fam = _donor_family(family, tmp_path)
    recipe = _write({**LEGACY_SLERP, "base_model": "FAMILY_BF16/a"}, fam, tmp_path / "first.yml")
    out = tmp_path / "out"
    build(recipe, out, BuildOptions(threads=2, quiet=True, render_cards=False))
    ours, ref = load_file(out / "model.safetensors"), load_file(REFERENCE / "model.safetensors")
    assert any(_bits(ours[n]) != _bits(ref[n]) for n in ref)


def test_warning_names_the_base_and_strict_refuses(
    family: dict[str, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    fam = _donor_family(family, tmp_path)
    recipe = _write(LEGACY_SLERP, fam, tmp_path / "legacy.yml")
    res = cli("build", recipe, "--out", tmp_path / "out", "--quiet", "--no-measure")
    assert res.code == 0, res.err
    lines = [ln for ln in " ".join(res.err.split()).split("warning: ") if "not among the slice" in ln]
    assert len(lines) == 1
    assert f"{recipe}:3: slices.0: base model {fam['base']} is not among the slice's sources" in lines[0]
    assert "mergekit >= 0.0.4 refuses" in lines[0] and "second source" in lines[0]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "config and tokenizer only: none of its weights are merged" in card
    assert f"using {fam['base']} as the base" not in card

    res = cli("build", recipe, "--out", tmp_path / "strict", "--quiet", "--strict")
    assert res.code == 2
    assert "not among the slice's sources" in res.err and "(strict)" in res.err
    assert "Traceback" not in res.err
    assert not (tmp_path / "strict").exists()

    text = "publish:\n  strict: true\n" + recipe.read_text()
    strict_recipe = tmp_path / "strict.yml"
    strict_recipe.write_text(text)
    res = cli("plan", strict_recipe)
    assert res.code == 2 and "not among the slice's sources" in res.err


def test_union_tokenizer_over_a_weightless_base(family: dict[str, Path], tmp_path: Path) -> None:
    """``tokenizer_source: union`` with such a base: mergekit 0.1.5's union over every referenced
    model (the base's tokenizer first), but the base gives no embedding rows: a token only the
    base has gets a zero row, the others come from the slice's sources."""
    vocab = generate_vocab_family(tmp_path / "vocab")["v1"]
    config = {
        "merge_method": "slerp",
        "slices": [{"sources": [{"model": str(family[m]), "layer_range": [0, 32]} for m in ("ft1", "ft2")]}],
        "base_model": str(vocab),
        "parameters": {"t": 0.3},
        "tokenizer_source": "union",
        "dtype": "bfloat16",
    }
    recipe = tmp_path / "union.yml"
    recipe.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "out"
    build(recipe, out, BuildOptions(threads=2, quiet=True, render_cards=False))

    def tokens(folder: Path) -> dict[str, int]:
        data = json.loads((folder / "tokenizer.json").read_text())
        return {**data["model"]["vocab"], **{t["content"]: t["id"] for t in data["added_tokens"]}}

    mine, base_only = tokens(out), set(tokens(vocab)) - set(tokens(family["ft1"]))
    assert base_only and set(mine) == set(tokens(vocab)) | set(tokens(family["ft1"]))
    embed = load_file(out / "model.safetensors")["model.embed_tokens.weight"]
    assert embed.shape[0] == len(mine)
    zero = {t for t, i in mine.items() if not bool(embed[i].abs().sum())}
    assert zero == base_only
    ft1 = load_file(family["ft1"] / "model.safetensors")["model.embed_tokens.weight"]
    shared = tokens(family["ft1"])
    assert any(not torch.equal(embed[mine[t]], ft1[i]) for t, i in shared.items())  # merged, not copied
