"""``publisher quantize`` end to end: outputs, sharding, atomicity, one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from publisher.cli import main
from publisher.standins import MistralShape, Recipe, generate_model
from publisher.tensors import ModelFiles, sha256_file
from tests.quantize.helpers import FIXTURES

SHAPE = MistralShape(hidden=64, intermediate=128, layers=3, heads=2, kv_heads=1, vocab=64)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return generate_model(tmp_path / "src", SHAPE, recipe=Recipe(seed=7), max_shard_bytes=60_000)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["quantize", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial" in p.name)


def test_sharded_model_in_sharded_model_out(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(ModelFiles.open(model).files) > 1
    out = tmp_path / "fp8"
    code, stdout, _ = run(capsys, str(model), "--out", str(out), "--max-shard-size", "40KB", "--threads", "2")
    assert code == 0, stdout
    assert "21 tensors to FP8" in stdout and "ignored: lm_head" in stdout
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all((out / s).is_file() for s in shards)
    assert index["metadata"]["total_parameters"] == ModelFiles.open(out).parameter_count  # scales count
    loaded = ModelFiles.open(out)
    assert loaded.tensors["model.layers.2.mlp.down_proj.weight"].dtype == "F8_E4M3"
    assert loaded.tensors["model.layers.2.mlp.down_proj.weight_scale"].shape == (64, 1)
    assert loaded.tensors["lm_head.weight"].dtype == "BF16"
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        assert sha256_file(out / name) == sha256_file(model / name), name
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    assert leftovers(tmp_path) == []


def test_untouched_tensors_are_byte_copies(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fp8"
    assert run(capsys, str(model), "--out", str(out), "--scheme", "fp8-block", "--quiet")[0] == 0
    src, dst = ModelFiles.open(model), ModelFiles.open(out)
    from publisher.tensors import TensorReader

    with TensorReader() as r:
        for name in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.1.input_layernorm.weight"):
            assert torch.equal(r.read(src.tensors[name]).view(torch.uint8), r.read(dst.tensors[name]).view(torch.uint8))


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_unknown_scheme(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(model), "--out", str(tmp_path / "o"), "--scheme", "nf4")
    one_line_error(code, err, "unknown quantization scheme 'nf4'", "fp8-dynamic")
    assert not (tmp_path / "o").exists()


def test_already_quantized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(FIXTURES / "tiny" / "FP8_BLOCK"), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "already quantized")
    # same checkpoint without its quantization_config: the FP8 tensors give it away
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.safetensors").write_bytes((FIXTURES / "tiny" / "FP8_BLOCK" / "model.safetensors").read_bytes())
    cfg = json.loads((FIXTURES / "tiny" / "input" / "config.json").read_text())
    (bare / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(capsys, str(bare), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "already FP8", "F8_E4M3")
    assert not (tmp_path / "o").exists()


def test_nan_weight_fails_whole_and_leaves_nothing(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = ModelFiles.open(model)
    victim = "model.layers.2.mlp.down_proj.weight"  # late in the model: earlier shards were written
    path = files.tensors[victim].path
    tensors = load_file(str(path))
    tensors[victim][5, 9] = float("nan")
    save_file(tensors, str(path), metadata={"format": "pt"})
    out = tmp_path / "o"
    code, _, err = run(capsys, str(model), "--out", str(out), "--max-shard-size", "20KB")
    one_line_error(code, err, victim, "NaN or Inf")
    assert not out.exists() and leftovers(tmp_path) == []


def test_unsupported_dtype(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = generate_model(tmp_path / "f32", SHAPE, recipe=Recipe(seed=1), dtype="F32", tokenizer=False)
    tensors = load_file(str(src / "model.safetensors"))
    tensors["model.layers.0.mlp.up_proj.weight"] = tensors["model.layers.0.mlp.up_proj.weight"].double()
    save_file(tensors, str(src / "model.safetensors"))
    code, _, err = run(capsys, str(src), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "model.layers.0.mlp.up_proj.weight is F64")


def test_output_must_not_exist(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("mine")
    code, _, err = run(capsys, str(model), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "already exists")
    (tmp_path / "empty").mkdir()  # an empty folder is accepted, as by `publisher build`
    code, _, err = run(capsys, str(model), "--out", str(tmp_path / "empty"))
    assert code == 0, err
    assert (tmp_path / "empty" / "config.json").is_file()


def test_bad_arguments(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(model), "--out", str(tmp_path / "o"), "--max-shard-size", "lots")
    one_line_error(code, err, "--max-shard-size")
    code, _, err = run(capsys, str(model), "--out", str(tmp_path / "o"), "--ignore", "re:[")
    one_line_error(code, err, "not a valid regular expression")
    code, _, err = run(capsys, str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "missing")
    pickles = tmp_path / "pickles"
    pickles.mkdir()
    (pickles / "pytorch_model.bin").write_bytes(b"x")
    code, _, err = run(capsys, str(pickles), "--out", str(tmp_path / "o"))
    one_line_error(code, err, "pickle")
    assert leftovers(tmp_path) == []
