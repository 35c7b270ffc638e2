"""``publisher plan``: parameters by filter and layer range, labelled per model, human units, full JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

GRADIENT_SLERP = """\
name: test/slerp
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
merge_method: slerp
base_model: {a}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
"""

DARE_TIES = """\
name: test/dare
models:
  - model: {base}
  - model: {ft1}
    parameters: {weight: 0.3, density: 0.7}
  - model: {ft2}
    parameters: {weight: 0.6, density: 0.4}
merge_method: dare_ties
base_model: {base}
dtype: bfloat16
"""


def _rows(out: str) -> list[list[str]]:
    """The cells of each table row, as printed."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


def test_gradient_slerp_prints_bands_not_one_row_per_value(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    path = recipe_file(GRADIENT_SLERP, a=family["a"], b=family["b"])
    res = cli("plan", path)
    assert res.code == 0, res.err  # type: ignore[attr-defined]
    out: str = res.out  # type: ignore[attr-defined]
    lines = out.splitlines()
    assert len(lines) < 25, out  # was ~55 rows of t values
    assert _rows(out)[:5] == [
        ["t", "all models", "self_attn", "0–7", "0 → 0.452"],
        ["", "", "", "8–15", "0.494 → 0.313"],
        ["", "", "", "16–23", "0.326 → 0.687"],
        ["", "", "", "24–31", "0.729 → 1"],
        ["", "", "mlp", "0–7", "1 → 0.548"],
    ]
    assert ["", "", "other", "0–31", "0.5"] in _rows(out)
    # small models in small units, never "0.000B / 0.00 GB"
    assert "0.000B" not in out and "0.00 GB" not in out
    params = json.loads(cli("plan", path, "--json").out)["parameters"]  # type: ignore[attr-defined]
    assert f"parameters {params / 1000:.3g}K" in out
    assert " kB" in out


def test_dare_ties_values_are_labelled_with_their_model(
    cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    path = recipe_file(DARE_TIES, base=family["base"], ft1=family["ft1"], ft2=family["ft2"])
    res = cli("plan", path)
    assert res.code == 0, res.err  # type: ignore[attr-defined]
    rows = _rows(res.out)  # type: ignore[attr-defined]
    for model, weight, density in ((family["ft1"], "0.3", "0.7"), (family["ft2"], "0.6", "0.4")):
        assert ["weight", str(model), "all", "all", weight] in rows, rows
        assert ["density", str(model), "all", "all", density] in rows, rows
    summary = json.loads(cli("plan", path, "--json").out)  # type: ignore[attr-defined]
    bands = {(b["parameter"], b["model"]): b for b in summary["parameter_bands"]}
    assert bands[("weight", str(family["ft1"]))]["constant"] == "0.3"
    assert bands[("density", str(family["ft2"]))]["constant"] == "0.4"
    assert ("density", str(family["base"])) not in bands  # not applied to the base
    # --json keeps everything: the text's figures, the per-tensor groups, the per-layer bands
    for key in ("parameters", "output_bytes", "disk_bytes", "estimated_peak_rss_bytes", "threads", "variants", "parameter_groups", "notes"):
        assert key in summary
    assert sum(summary["parameter_groups"].values()) == summary["tensors"]


def test_json_bands_cover_every_layer(cli: Callable[..., object], recipe_file: Callable[..., Path], family: dict[str, Path]) -> None:
    path = recipe_file(GRADIENT_SLERP, a=family["a"], b=family["b"])
    summary = json.loads(cli("plan", path, "--json").out)  # type: ignore[attr-defined]
    (t,) = summary["parameter_bands"]
    assert t["parameter"] == "t" and t["model"] is None
    assert [c["filter"] for c in t["columns"]] == ["self_attn", "mlp", "other"]
    assert [r["layers"] for r in t["columns"][0]["runs"]] == [[0, 7], [8, 15], [16, 23], [24, 31]]
    assert len(t["bands"]) == 32 and t["bands"][0] == {"layers": [0, 0], "values": ["0", "1", "0.5"]}
