"""Shared helpers for the FP8 tests: fixture paths and bitwise tensor comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fp8"
# (case, reference folder, our scheme name, extra ignore entries)
CASES: list[tuple[str, str, str, list[str]]] = []
for _folder in sorted(FIXTURES.glob("*/FP8_*")):
    _job = json.loads((_folder / "job.json").read_text())
    CASES.append(
        (
            _folder.parent.name,
            _folder.name,
            {"FP8_DYNAMIC": "fp8-dynamic", "FP8_BLOCK": "fp8-block"}[_job["scheme"]],
            [e for e in _job["ignore"] if e != "lm_head"],
        )
    )


def load_tensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(path)))
    return out


def raw(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def assert_same_tensors(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    assert sorted(ours) == sorted(ref)
    for name in ref:
        a, b = ours[name], ref[name]
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        if raw(a) != raw(b):
            diff = int((a.view(torch.uint8) != b.view(torch.uint8)).sum()) if a.element_size() == 1 else -1
            raise AssertionError(f"{name}: bytes differ ({diff} FP8 codes)")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
