"""`publisher release` obeys the release gate: a recipe whose checks fail is built, refused with
one line giving the number and the threshold (exit 2), and nothing of it reaches the Hub."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.release.conftest import Catalog, parent_recipe


def test_release_refuses_a_build_whose_checks_fail(
    make_catalog: Callable[..., Catalog], cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = parent_recipe() + "checks:\n  max_perplexity: 1.0\n"
    cat = make_catalog({"recipes/parent.yaml": strict})
    before = cat.state()
    monkeypatch.setenv("HF_TOKEN", cat.token)
    monkeypatch.chdir(cat.root)
    result = cli("release", "recipes", "--endpoint", cat.url, "--builds", cat.builds)
    assert result.code == 2  # type: ignore[attr-defined]
    err = [line for line in result.err.splitlines() if line.startswith("error:")]  # type: ignore[attr-defined]
    assert len(err) == 1 and "checks failed, not publishing" in err[0]
    assert "checks.max_perplexity: merged perplexity is" in err[0] and "above the threshold 1" in err[0]
    assert cat.state() == before  # acme/parent and acme/parent-FP8 never appeared
    built = next(cat.builds.rglob("checks.json"))
    assert '"passed": false' in built.read_text()
