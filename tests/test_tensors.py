"""Safetensors reading/writing: our writer's files load in the safetensors library, and every
kind of corrupt file is refused with a message naming the file and tensor."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from publisher.errors import SourceError, TensorFileError
from publisher.tensors import (
    ModelFiles,
    PlannedTensor,
    ShardWriter,
    TensorReader,
    assign_shards,
    read_header,
    sha256_file,
    shard_names,
)


def _raw_file(path: Path, header: dict[str, object], data: bytes) -> Path:
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_writer_output_loads_in_safetensors_and_hash_matches(tmp_path: Path) -> None:
    tensors = {
        "a": torch.randn(3, 5).to(torch.bfloat16),
        "b": torch.arange(7, dtype=torch.float32),
        "c": torch.zeros(0, 4, dtype=torch.float16),
    }
    plan = [PlannedTensor(n, {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}[t.dtype], tuple(t.shape)) for n, t in tensors.items()]
    w = ShardWriter(tmp_path / "x.safetensors", plan, {"format": "pt"})
    for name, t in tensors.items():
        w.write(name, t)
    digest = w.close()
    loaded = load_file(tmp_path / "x.safetensors")
    for name, t in tensors.items():
        assert torch.equal(loaded[name], t)
    assert digest.sha256 == sha256_file(tmp_path / "x.safetensors")
    assert digest.size == (tmp_path / "x.safetensors").stat().st_size
    assert not (tmp_path / "x.safetensors.partial").exists()


def test_writer_refuses_out_of_order_and_wrong_shape(tmp_path: Path) -> None:
    plan = [PlannedTensor("a", "F32", (2,)), PlannedTensor("b", "F32", (2,))]
    w = ShardWriter(tmp_path / "x.safetensors", plan, None)
    with pytest.raises(RuntimeError, match="expected a"):
        w.write("b", torch.zeros(2))
    with pytest.raises(RuntimeError, match="planned F32"):
        w.write("a", torch.zeros(3))
    w.abort()
    assert not list(tmp_path.iterdir())


def test_reader_reads_bands_and_whole(tmp_path: Path) -> None:
    t = torch.randn(10, 4).to(torch.bfloat16)
    save_file({"w": t}, tmp_path / "m.safetensors")
    infos, _ = read_header(tmp_path / "m.safetensors")
    with TensorReader() as r:
        assert torch.equal(r.read(infos["w"]), t)
        assert torch.equal(r.read(infos["w"], rows=(3, 7)), t[3:7])


def test_assign_shards_is_greedy_and_names_follow_hf() -> None:
    plan = [PlannedTensor(f"t{i}", "F32", (10,)) for i in range(5)]  # 40 bytes each
    shards = assign_shards(plan, 100)
    assert [len(s) for s in shards] == [2, 2, 1]
    assert shard_names(3) == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert shard_names(1) == ["model.safetensors"]


@pytest.mark.parametrize(
    ("header", "data", "match"),
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8, "needs 8 bytes"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "beyond the 4 data bytes"),
        ({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}}, b"\0" * 8, "invalid shape"),
        (
            {
                "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlap",
        ),
    ],
)
def test_corrupt_headers_are_refused(tmp_path: Path, header: dict[str, object], data: bytes, match: str) -> None:
    path = _raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(TensorFileError, match=match) as e:
        read_header(path)
    assert str(path) in str(e.value)


def test_truncated_and_garbage_files(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\1\2")
    with pytest.raises(TensorFileError, match="too short"):
        read_header(short)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(TensorFileError, match="does not fit"):
        read_header(huge)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(TensorFileError, match="not valid JSON"):
        read_header(garbage)


def test_truncated_data_found_when_reading(tmp_path: Path) -> None:
    t = torch.randn(64, 64)
    path = tmp_path / "m.safetensors"
    save_file({"w": t}, path)
    infos, _ = read_header(path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size - 100)
    with pytest.raises(TensorFileError, match="beyond"):
        read_header(path)
    with TensorReader() as r, pytest.raises(TensorFileError, match="file ended"):
        r.read(infos["w"])


def test_pickle_only_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(SourceError, match="never unpickles"):
        ModelFiles.open(tmp_path)


def test_index_naming_a_missing_shard(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"w": "model-00001-of-00002.safetensors"}})
    )
    with pytest.raises(TensorFileError, match="missing"):
        ModelFiles.open(tmp_path)
