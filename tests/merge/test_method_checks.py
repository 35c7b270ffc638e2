"""Bad method input: one line naming the parameter and the fix, exit code 2, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TIES = """\
merge_method: {method}
{base}
models:
  - model: {ft1}
    parameters: {{weight: {w1}, density: {d1}}}
  - model: {ft2}
    parameters: {{weight: {w2}, density: 0.5}}
dtype: bfloat16
"""


def _ties(family: dict[str, Path], *, method: str = "ties", base: bool = True, w1: float = 0.5, w2: float = 0.5, d1: float = 0.5) -> str:
    return TIES.format(
        method=method,
        base=f"base_model: {family['base']}" if base else "",
        ft1=family["ft1"],
        ft2=family["ft2"],
        w1=w1,
        w2=w2,
        d1=d1,
    )


CASES: list[tuple[str, Callable[[dict[str, Path]], str], list[str]]] = [
    ("density_zero", lambda f: _ties(f, d1=0), ["density", "(0"]),
    ("density_above_one", lambda f: _ties(f, method="dare_ties", d1=1.5), ["density"]),
    ("weights_sum_to_zero", lambda f: _ties(f, w1=0.5, w2=-0.5), ["weight", "normalize"]),
    ("needs_base", lambda f: _ties(f, base=False), ["base_model"]),
    (
        "della_epsilon",
        lambda f: _ties(f, method="della", d1=0.1) + "parameters: {epsilon: 0.2}\n",
        ["epsilon"],
    ),
    (
        "model_stock_one_finetune",
        lambda f: f"merge_method: model_stock\nbase_model: {f['base']}\nmodels:\n  - model: {f['ft1']}\n",
        ["model_stock"],
    ),
    (
        "nuslerp_three",
        lambda f: "merge_method: nuslerp\nmodels:\n"
        + "".join(f"  - model: {f[k]}\n    parameters: {{weight: 1.0}}\n" for k in ("ft1", "ft2", "ft3")),
        ["nuslerp", "two"],
    ),
]


@pytest.mark.parametrize(("case", "recipe", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_method_input(case: str, recipe: Callable[[dict[str, Path]], str], words: list[str], family: dict[str, Path], tmp_path: Path, cli: Callable[..., object]) -> None:
    path = tmp_path / f"{case}.yml"
    path.write_text(recipe(family))
    out = tmp_path / "out"
    res = cli("build", path, "--out", out)
    assert res.code == 2, (res.out, res.err)  # type: ignore[attr-defined]
    err = res.err.strip()  # type: ignore[attr-defined]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    assert not out.exists()
