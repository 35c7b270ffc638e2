"""Fast, one-line failures through the real command line (a fresh ``python -m publisher``).

No network, ``HF_HUB_OFFLINE=1`` with an empty cache, or an endpoint that refuses
connections: one line naming the repo and what to do, no retries. Every recipe section is
checked in ``plan`` and before ``build`` resolves a parent, naming the user's file:line. An
empty ``--out`` folder is accepted; a failed build leaves no work folder behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.demo import seed_standins
from publisher.hub.server import LocalHub

RECIPE = """\
name: someone/merged
version: 0.1.0
merge:
  models:
    - model: {a}
    - model: {b}
  merge_method: slerp
  base_model: {a}
  parameters: {{t: 0.5}}
  dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
card:
  license: apache-2.0
"""
HUB_PARENTS = {"a": "someone/parent-a", "b": "someone/parent-b"}


def publisher(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``publisher ARGS`` in a fresh process, with a fresh Hugging Face home and nothing cached."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PUBLISHER_"))}
    base.update(HF_HOME=str(cwd / ".hf-home"), HF_HUB_DISABLE_TELEMETRY="1", COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "publisher", *map(str, args)], cwd=cwd, env=base, capture_output=True, text=True, timeout=120
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], err[-2000:])
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "Retrying" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def free_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_recipe(folder: Path, text: str = RECIPE, **parents: str | Path) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(text.format(**{**HUB_PARENTS, **{k: str(v) for k, v in parents.items()}}))
    return path


@pytest.mark.parametrize("command", ["plan", "build"])
def test_an_endpoint_that_refuses_connections_fails_at_once(tmp_path: Path, command: str) -> None:
    recipe = write_recipe(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    args = ["--out", tmp_path / "out"] if command == "build" else []
    proc = publisher(command, recipe, *args, cwd=tmp_path, HF_ENDPOINT=url)
    one_line(proc, 1, f"recipe.yaml:8: model {HUB_PARENTS['a']}", f"cannot reach {url}", "HF_ENDPOINT", "publisher hub serve")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*partial"))


def test_publish_and_release_to_an_unreachable_endpoint_name_the_repos(tmp_path: Path, family: dict[str, Path]) -> None:
    recipe = write_recipe(tmp_path, a=family["a"], b=family["b"])
    assert publisher("build", recipe, "--out", tmp_path / "out", "--quiet", "--no-measure", cwd=tmp_path).returncode == 0
    url = f"http://127.0.0.1:{free_port()}"
    proc = publisher("publish", tmp_path / "out", cwd=tmp_path, HF_ENDPOINT=url, HF_TOKEN="hf_" + "x" * 34)
    one_line(proc, 1, f"cannot reach {url} for someone/merged, someone/merged-FP8", "publisher hub serve")
    (tmp_path / "recipes").mkdir()
    recipe.rename(tmp_path / "recipes" / "merged.yaml")
    proc = publisher("release", tmp_path / "recipes", "--dry-run", cwd=tmp_path, HF_ENDPOINT=url)
    one_line(proc, 1, f"cannot reach {url} for someone/merged", "publisher hub serve")


@pytest.mark.parametrize("command", ["plan", "build"])
def test_offline_with_nothing_cached_fails_at_once(tmp_path: Path, command: str) -> None:
    recipe = write_recipe(tmp_path)
    args = ["--out", tmp_path / "out"] if command == "build" else []
    proc = publisher(command, recipe, *args, cwd=tmp_path, HF_HUB_OFFLINE="1")
    one_line(proc, 2, f"recipe.yaml:8: model {HUB_PARENTS['a']}", "not in the local cache", "publisher hub serve")


@pytest.fixture
def local_hub(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with LocalHub(tmp_path / "hub") as hub:
        token = hub.create_token("someone", "write")
        seed_standins(hub.url, token, sorted(HUB_PARENTS.values()), tmp_path / "standins")
        yield hub.url, token


def test_quiet_silences_huggingface_hub_bars(tmp_path: Path, local_hub: tuple[str, str]) -> None:
    url, token = local_hub
    recipe = write_recipe(tmp_path)
    proc = publisher("build", recipe, "--out", tmp_path / "out", "--quiet", cwd=tmp_path, HF_ENDPOINT=url, HF_TOKEN=token)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "variants" / "FP8" / "README.md").is_file()
    assert "Fetching" not in proc.stderr and "it/s" not in proc.stderr and "%|" not in proc.stderr, proc.stderr
    proc = publisher("publish", tmp_path / "out", "--quiet", cwd=tmp_path, HF_ENDPOINT=url, HF_TOKEN=token)
    assert proc.returncode == 0, proc.stderr
    assert "%|" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    assert ": committing " not in proc.stdout and ": tagging " not in proc.stdout, proc.stdout  # the result table only
    assert "someone/merged-FP8" in proc.stdout, proc.stdout


# A bad value in each recipe section, with the line it is on. The parents do not exist:
# every check must fire before a parent is even looked for.
SECTION_PROBLEMS = [
    ("  license: apache2\n", "recipe.yaml:14: card.license", "did you mean 'apache-2.0'?"),
    ("  license: other\n", "recipe.yaml:14: card.license", "needs license_name"),
    ("  license_name: mine\n", "recipe.yaml:14: card.license_name", "without card.license"),
    ("  license: mit\n  language: [en, English]\n", "recipe.yaml:15: card.language.1", "'English' is not an ISO 639"),
    ("  license: mit\n  tags: [\"two\\nlines\"]\n", "recipe.yaml:15: card.tags.0", "not a one-line string"),
    ("  license: mit\n  template: card.md.j2\n", "recipe.yaml:15: card.template", "card.md.j2 does not exist"),
    ("  license: mit\n  template: broken.md.j2\n", "broken.md.j2:2", "template syntax error"),
    ("  license: mit\n  evaluations: evals/none.json\n", "recipe.yaml:15: card.evaluations", "evals/none.json not found"),
    ("  license: mit\n  context_length: 0\n", "recipe.yaml:15: card.context_length", "greater than 0"),
]
QUANTIZE_PROBLEMS = [
    ("  - scheme: fp8-dynamc\n", "recipe.yaml:12: quantize.0.scheme", "did you mean 'fp8-dynamic'?"),
    ("  - scheme: fp8-dynamic\n  - scheme: fp8-block\n    suffix: FP8\n", "recipe.yaml:14: quantize.1.suffix", "two quantize entries"),
]


def _bad_recipe(tmp_path: Path, card: str = "  license: mit\n", quantize: str = "  - scheme: fp8-dynamic\n", top: str = "") -> Path:
    (tmp_path / "broken.md.j2").write_text("# {{ model.name }}\n{% if %}\n")
    text = top + RECIPE.replace("  - scheme: fp8-dynamic\n", quantize).replace("  license: apache-2.0\n", card)
    return write_recipe(tmp_path, text, a="./nowhere/a", b="./nowhere/b")


def _assert_refused_in_plan_and_build(tmp_path: Path, recipe: Path, *needles: str) -> None:
    one_line(publisher("plan", recipe, cwd=tmp_path), 2, *needles)
    out = tmp_path / "out"
    one_line(publisher("build", recipe, "--out", out, cwd=tmp_path), 2, *needles)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(("card", "where", "what"), SECTION_PROBLEMS)
def test_card_section_is_checked_in_plan_and_before_build_reads_anything(tmp_path: Path, card: str, where: str, what: str) -> None:
    _assert_refused_in_plan_and_build(tmp_path, _bad_recipe(tmp_path, card=card), where, what)


@pytest.mark.parametrize(("quantize", "where", "what"), QUANTIZE_PROBLEMS)
def test_quantize_section_is_checked_in_plan_and_before_build(tmp_path: Path, quantize: str, where: str, what: str) -> None:
    _assert_refused_in_plan_and_build(tmp_path, _bad_recipe(tmp_path, quantize=quantize), where, what)


def test_publish_section_is_checked_in_plan_and_before_build(tmp_path: Path) -> None:
    recipe = _bad_recipe(tmp_path, top="publish:\n  private: true\n")
    recipe.write_text(recipe.read_text().replace("version: 0.1.0\n", ""))
    _assert_refused_in_plan_and_build(tmp_path, recipe, "recipe.yaml:1: publish", "needs the recipe's version")
    recipe.write_text(recipe.read_text().replace("private: true", "private: maybe"))
    _assert_refused_in_plan_and_build(tmp_path, recipe, "recipe.yaml:2", "private")


def test_missing_parent_folder_says_it_does_not_exist_with_the_line(tmp_path: Path, family: dict[str, Path]) -> None:
    recipe = write_recipe(tmp_path, a=family["a"], b="./parents/b")
    for args in (("plan", recipe), ("build", recipe, "--out", tmp_path / "out")):
        one_line(publisher(*args, cwd=tmp_path), 2, "recipe.yaml:6: model ./parents/b", f"{tmp_path / 'parents' / 'b'} does not exist")


def test_a_bare_repo_id_that_is_neither_a_folder_nor_a_repo_says_it_does_not_exist(
    tmp_path: Path, local_hub: tuple[str, str]
) -> None:
    url, token = local_hub
    recipe = write_recipe(tmp_path, b="someone/no-such-model")
    (tmp_path / "lora").mkdir()
    lora = write_recipe(tmp_path / "lora", b="someone/parent-b+someone/no-such-adapter")
    folder = tmp_path / "someone" / "no-such-model"
    on_hub = {"HF_ENDPOINT": url, "HF_TOKEN": token}
    runs = (("plan", recipe), ("build", recipe, "--out", tmp_path / "out", "--quiet"))
    for args in runs:  # offline, nothing cached: it may be on a Hub, not here
        one_line(publisher(*args, cwd=tmp_path, HF_HUB_OFFLINE="1"), 2, "recipe.yaml:8: model someone/parent-a",
                 f"does not exist here: no folder {tmp_path / 'someone' / 'parent-a'}", "not in the local cache",
                 "unset HF_HUB_OFFLINE", "publisher hub serve")
    for args in runs:
        one_line(publisher(*args, cwd=tmp_path, **on_hub), 2, "recipe.yaml:6: model someone/no-such-model",
                 f"does not exist: no folder {folder} and no repo someone/no-such-model at {url}", "HF_TOKEN")
    one_line(publisher("plan", lora, cwd=tmp_path, **on_hub), 2, "recipe.yaml:6: model someone/parent-b+someone/no-such-adapter",
             f"does not exist: no folder {tmp_path / 'lora' / 'someone' / 'no-such-adapter'} and no repo someone/no-such-adapter")
    lora.write_text(lora.read_text().replace("someone/no-such-adapter", "../adapters/none"))
    one_line(publisher("plan", lora, cwd=tmp_path, **on_hub), 2, "recipe.yaml:6: model someone/parent-b+../adapters/none",
             f"LoRA folder {tmp_path / 'adapters' / 'none'} does not exist")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*partial"))


def test_an_existing_empty_out_folder_is_accepted(tmp_path: Path, family: dict[str, Path]) -> None:
    recipe = write_recipe(tmp_path, a=family["a"], b=family["b"])
    (tmp_path / "out").mkdir()
    proc = publisher("build", recipe, "--out", tmp_path / "out", "--quiet", "--no-measure", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "manifest.json").is_file() and (tmp_path / "out" / "variants" / "FP8" / "README.md").is_file()


def test_a_build_that_fails_after_the_merge_leaves_no_work_folder(tmp_path: Path, family: dict[str, Path]) -> None:
    (tmp_path / "card.md.j2").write_text("# {{ model.no_such_field.x }}\n")  # fails only when rendered
    text = RECIPE.replace("  license: apache-2.0\n", "  license: apache-2.0\n  template: card.md.j2\n")
    recipe = write_recipe(tmp_path, text, a=family["a"], b=family["b"])
    proc = publisher("build", recipe, "--out", tmp_path / "builds" / "v1" / "out", "--quiet", "--no-measure", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and "card.md.j2:1" in errors[0] and "no_such_field" in errors[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".hf-home") == ["card.md.j2", "recipe.yaml"]
