"""``publisher check --no-measure`` as its own process: transformers' AutoTokenizer without torch.

The structural path must stay fast (benchmarks/check_bench.py: under 2 s on a 7B-shaped build),
so the program marks torch absent when it measures nothing; these tests run the real program
and check both that torch was never imported and that the tokenizer checks still catch a fault.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.check.conftest import edit_json, recipe_text

Cli = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]


def _check_process(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-X", "importtime", "-m", "publisher", "check", str(out), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _build(cli: Cli, tmp_path: Path, model: Path) -> Path:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text(f"[{{model: {model}, parameters: {{weight: 1.0}}}}]",
                                  extra="quantize: [{scheme: fp8-dynamic}]\nchecks: {measure: false}\n"))
    out = tmp_path / "out"
    r = cli("build", recipe, "--out", out, "--quiet")
    assert r.code == 0, r.err
    return out


def test_structural_checks_load_the_tokenizer_without_torch(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    out = _build(cli, tmp_path, chars_models["a"])
    p = _check_process(out, "--no-measure")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "checks passed" in p.stdout
    imported = _imported(p.stderr)
    assert "transformers" in imported and "tokenizers" in imported  # AutoTokenizer did load it
    assert "torch" not in imported
    assert not _errors(p.stderr)


def test_without_torch_a_broken_chat_template_is_still_caught(tmp_path: Path, chars_models: dict[str, Path], cli: Cli) -> None:
    out = _build(cli, tmp_path, chars_models["a"])
    config = out / "variants" / "FP8" / "tokenizer_config.json"
    edit_json(config, lambda c: c.update(chat_template="{{ messages[0]['content'] | nosuchfilter }}"))
    for name in ("chat_template.jinja",):
        (config.parent / name).unlink(missing_ok=True)
    edit_json(out / "generation_config.json", lambda g: g.update(eos_token_id=[2, 500]))
    p = _check_process(out)  # the recipe says measure: false, so this process measures nothing either
    assert p.returncode == 2, p.stderr[-2000:]
    assert "torch" not in _imported(p.stderr)
    errors = _errors(p.stderr)
    assert len(errors) == 2, errors
    assert errors[0] == f"error: {out}/generation_config.json: eos_token_id 500 is not a token id below vocab_size 128"
    assert errors[1].startswith(f"error: {out}/variants/FP8/tokenizer_config.json: the chat template does not render")
