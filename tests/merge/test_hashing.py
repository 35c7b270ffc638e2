"""Input files hashed from the bytes the engine reads: equal to sha256 of the file, whatever the
order the pieces arrive in; a file not read whole is left for an ordinary hash."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from safetensors.torch import save_file

from publisher.merge.hashing import InputHasher
from publisher.tensors import TensorReader, read_header, sha256_file


def _model(path: Path) -> Path:
    save_file({f"t{i:02d}": torch.randn(17, 5 + i) for i in range(12)}, path)
    return path


def test_pieces_in_any_order_give_the_file_hash(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.safetensors")
    infos = list(read_header(path)[0].values())
    random.Random(3).shuffle(infos)
    hasher = InputHasher([path])
    with TensorReader() as r:
        for info in infos:
            hasher.offer(info, r.read(info))
    assert hasher.finish() == {path: sha256_file(path)}


def test_a_file_not_read_whole_is_not_claimed(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.safetensors")
    infos = sorted(read_header(path)[0].values(), key=lambda i: i.offset)
    hasher = InputHasher([path], max_pending=1 << 30)
    with TensorReader() as r:
        for info in infos[:-1]:
            hasher.offer(info, r.read(info))
    assert hasher.finish() == {}


def test_too_much_out_of_order_data_gives_up(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.safetensors")
    infos = sorted(read_header(path)[0].values(), key=lambda i: i.offset)
    hasher = InputHasher([path], max_pending=64)
    with TensorReader() as r:
        for info in reversed(infos):
            hasher.offer(info, r.read(info))
    assert hasher.finish() == {}


def test_build_manifest_hashes_parents_it_reads(tmp_path: Path, family: dict[str, Path], recipe_file: object) -> None:
    from publisher.build import BuildOptions, build
    from publisher.check.run import CheckOptions

    text = "models:\n  - model: {a}\n    parameters: {weight: 1}\n  - model: {b}\n    parameters: {weight: 1}\nmerge_method: linear\n"
    recipe = recipe_file(text, a=family["a"], b=family["b"])  # type: ignore[operator]
    manifest = build(recipe, tmp_path / "out", BuildOptions(quiet=True, check_options=CheckOptions(measure=False))).manifest
    checked = []
    for entry in manifest.inputs:
        for f in entry.files:
            assert entry.kind == "local"  # named by its folder: no path of the build machine
            assert f.sha256 == sha256_file(family[entry.ref] / f.path)
            checked.append(f.path)
    # both parents, each with its weights file among the hashed ones
    assert len(manifest.inputs) == 2
    assert checked.count("model.safetensors") == 2, checked
