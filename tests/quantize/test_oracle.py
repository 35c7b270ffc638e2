"""Bitwise agreement with llm-compressor 0.14.0.1 (fixtures from tests/oracle/fp8/regenerate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import publisher.quantize.fp8 as fp8
from publisher.quantize import VariantWriter, plan_variant, quantize_model, quantize_tensor
from publisher.quantize.model import source_order
from publisher.tensors import ModelFiles, PlannedTensor, TensorReader, sha256_file
from tests.quantize.helpers import CASES, FIXTURES, assert_same_tensors, load_tensors, read_json

IDS = [f"{case}-{folder}" for case, folder, _, _ in CASES]


def test_fixtures_cover_what_we_claim() -> None:
    assert {(c, f) for c, f, _, _ in CASES} >= {
        ("tiny", "FP8_DYNAMIC"), ("tiny", "FP8_BLOCK"), ("odd", "FP8_DYNAMIC"), ("odd", "FP8_BLOCK"),
        ("edge", "FP8_DYNAMIC"), ("edge", "FP8_BLOCK"), ("tiny16", "FP8_DYNAMIC"), ("tiny", "FP8_DYNAMIC_ignore"),
    }
    edge = load_tensors(FIXTURES / "edge" / "input")
    q = edge["model.layers.0.self_attn.q_proj.weight"]
    assert bool((q[3] == 0).all())  # zero row
    assert bool(torch.signbit(edge["model.layers.0.self_attn.k_proj.weight"][5]).all())  # -0.0 row


@pytest.mark.parametrize(("case", "folder", "scheme", "ignore"), CASES, ids=IDS)
def test_quantize_model_matches_llmcompressor(tmp_path: Path, case: str, folder: str, scheme: str, ignore: list[str]) -> None:
    out = tmp_path / "out"
    quantize_model(FIXTURES / case / "input", out, scheme, ignore=ignore, threads=2)
    ref = FIXTURES / case / folder
    assert_same_tensors(load_tensors(out), load_tensors(ref))
    ours, theirs = read_json(out / "config.json"), read_json(ref / "config.json")
    assert ours["quantization_config"] == theirs["quantization_config"]
    assert ours == theirs  # nothing else in config.json changes


@pytest.mark.parametrize(("case", "folder", "scheme", "ignore"), CASES, ids=IDS)
def test_per_tensor_api_matches_llmcompressor(case: str, folder: str, scheme: str, ignore: list[str]) -> None:
    ref = load_tensors(FIXTURES / case / folder)
    ours: dict[str, torch.Tensor] = {}
    for name, tensor in load_tensors(FIXTURES / case / "input").items():
        ours.update(quantize_tensor(name, tensor, scheme, ignore))
    assert_same_tensors(ours, ref)


@pytest.mark.parametrize("band", [1, 128 * 64, 300 * 7])
def test_band_size_never_changes_bits(monkeypatch: pytest.MonkeyPatch, band: int) -> None:
    monkeypatch.setattr(fp8, "BAND_ELEMENTS", band)
    for case, folder, scheme, ignore in CASES:
        ref = load_tensors(FIXTURES / case / folder)
        for name, tensor in load_tensors(FIXTURES / case / "input").items():
            for out_name, out in quantize_tensor(name, tensor, scheme, ignore):
                assert out.view(torch.uint8).equal(ref[out_name].view(torch.uint8)), (case, folder, out_name)


def test_same_pass_writer_gives_the_same_bytes_as_quantize(tmp_path: Path) -> None:
    """The engine's path (whole tensors through VariantWriter.add) == the standalone streaming path."""
    src = FIXTURES / "odd" / "input"
    files = ModelFiles.open(src)
    order = source_order(files)
    for scheme in ("fp8-dynamic", "fp8-block"):
        plan = plan_variant([PlannedTensor(t.name, t.dtype, t.shape) for t in order], scheme, (), files.config)
        engine_out = tmp_path / f"engine-{scheme}"
        engine_out.mkdir()
        writer = VariantWriter(engine_out, plan, max_shard_bytes=200_000)
        with TensorReader() as reader:
            for info in order:
                writer.add(info.name, reader.read(info))
        engine_files = writer.finish(files.config, support_from=src)
        standalone = tmp_path / f"standalone-{scheme}"
        result = quantize_model(src, standalone, scheme, max_shard_bytes=200_000, threads=3)
        assert [f.path for f in engine_files] == [f.path for f in result.files]
        assert len([f for f in result.files if f.path.endswith(".safetensors")]) > 1
        for f in result.files:
            assert sha256_file(engine_out / f.path) == sha256_file(standalone / f.path) == f.sha256, f.path


def test_thread_count_does_not_change_bytes(tmp_path: Path) -> None:
    digests = []
    for threads in (1, 4):
        result = quantize_model(FIXTURES / "tiny" / "input", tmp_path / f"t{threads}", "fp8-block", threads=threads)
        digests.append([(f.path, f.sha256) for f in result.files])
    assert digests[0] == digests[1]
