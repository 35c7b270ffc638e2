"""The card's "How to reproduce" runs as written, in a fresh folder, and makes the same weights.

The recipe and the commands are read from the card itself; the commands run through the real
``publisher`` command line (the install line is checked, not run: there is no package index
here, and the running publisher is the version it names).
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from publisher import __version__
from publisher.demo import generate_standin, seed_standins
from publisher.manifest import Manifest, load_manifest
from tests.hub.helpers import Hub
from tests.hub.test_provenance import PARENTS, RECIPE, assert_same_manifest, cli, hub_env


def reproduce_section(card: str) -> tuple[str, list[str], str]:
    """(the recipe, the commands, the prose) of the card's "How to reproduce" section."""
    section = card.split("## How to reproduce\n", 1)[1].split("\n## ", 1)[0]
    blocks = {lang: body for fence, lang, body in re.findall(r"^(`{3,})(\w+)\n(.*?)\n\1$", section, re.M | re.S)}
    return blocks["yaml"] + "\n", blocks["bash"].splitlines(), section


def run_as_written(card: str, where: Path, env: dict[str, str]) -> None:
    recipe, commands, _ = reproduce_section(card)
    where.mkdir(parents=True, exist_ok=True)
    (where / "recipe.yaml").write_text(recipe)
    assert commands[0] == f'pip install "publisher=={__version__}"'
    assert len(commands) == 2
    for line in commands[1:]:
        args = shlex.split(line)
        assert args[0] == "publisher" and "--out" in args, line
        cli(*args[1:], "--quiet", env=env, cwd=where)


def weights(m: Manifest) -> dict[str, dict[str, str]]:
    return {v.name: {f.path: f.sha256 for f in v.files if f.path != "recipe.yaml"} for v in m.variants}


def test_reproduce_with_local_parents(hub: Hub, tmp_path: Path) -> None:
    folders = {r: generate_standin(r, tmp_path / "mine" / "models") for r in PARENTS}
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    recipe = tmp_path / "mine" / "merge.yaml"
    recipe.write_text(RECIPE.format(a=folders["acme/base-a"], b=folders["acme/base-b"]))
    out = tmp_path / "mine" / "out"
    cli("build", recipe, "--out", out, "--quiet", env=env)
    card = (out / "README.md").read_text()
    _, _, prose = reproduce_section(card)
    assert "`acme--base-a` and `acme--base-b` are local folders" in prose

    elsewhere = tmp_path / "someone-else"
    for folder in folders.values():  # the parents, put beside the recipe under the names the card gives
        shutil.copytree(folder, elsewhere / folder.name)
    run_as_written(card, elsewhere, {**hub_env(hub, tmp_path / "home2", tmp_path / "hf-cache2"), "PYTHONHASHSEED": "7"})
    again = elsewhere / "merge"
    assert_same_manifest(again / "manifest.json", out / "manifest.json")
    assert (again / "variants/FP8/model.safetensors").read_bytes() == (out / "variants/FP8/model.safetensors").read_bytes()


def test_reproduce_pins_hub_parents_to_their_commits(hub: Hub, tmp_path: Path) -> None:
    seed_standins(hub.url, hub.token, PARENTS, tmp_path / "standins")
    commits = {r: hub.api().list_repo_commits(r)[0].commit_id for r in PARENTS}
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    recipe = tmp_path / "merge.yaml"
    recipe.write_text(RECIPE.format(a="acme/base-a", b="acme/base-b"))  # not pinned: the card pins them
    out = tmp_path / "out"
    cli("build", recipe, "--out", out, "--quiet", env=env)
    card = (out / "README.md").read_text()
    text, _, _ = reproduce_section(card)
    assert f"model: acme/base-a@{commits['acme/base-a']}\n" in text and f"model: acme/base-b@{commits['acme/base-b']}\n" in text
    assert f"base_model: acme/base-a@{commits['acme/base-a']}\n" in text

    # the parents move on; the card's recipe still builds exactly what was merged
    api = hub.api()
    api.upload_file(path_or_fileobj=b"moved on\n", path_in_repo="NOTES.md", repo_id="acme/base-a")
    run_as_written(card, tmp_path / "reader", hub_env(hub, tmp_path / "home2", tmp_path / "hf-cache2"))
    first, again = load_manifest(out), load_manifest(tmp_path / "reader" / "merge")
    assert weights(again) == weights(first)
    assert [(i.repo_id, i.revision, i.files) for i in again.inputs] == [(i.repo_id, i.revision, i.files) for i in first.inputs]
