"""Provenance that travels: rebuilds that publish nothing, and no path of the build machine on the Hub.

Everything goes through the real ``publisher`` command line (a subprocess, as a user runs it)
and the real huggingface_hub client against the local Hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from huggingface_hub import snapshot_download

from publisher.demo import seed_standins
from publisher.manifest import BUILD_RECORD_FILE, BuildRecord, load_manifest
from publisher.recipe import load_recipe
from tests.hub.helpers import Hub

ROOT_DIR = Path(__file__).resolve().parents[2]
PARENTS = ["acme/base-a", "acme/base-b"]
RECIPE = """\
# a rebuild anywhere must publish nothing
name: acme/merge
version: 1.0.0
merge:
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
      - value: 0.5
  dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
card:
  license: apache-2.0
  summary: A merge that travels.
"""


def cli(*args: str | Path, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT_DIR), COLUMNS="200", **env)
    done = subprocess.run([sys.executable, "-m", "publisher.cli", *map(str, args)], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def hub_env(hub: Hub, home: Path, cache: Path) -> dict[str, str]:
    """A user's environment: this Hub, a write token, their own caches (all under ``home``)."""
    return {
        "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_HOME": str(home / "hf"),
        "PUBLISHER_HF_CACHE": str(cache), "PUBLISHER_CACHE": str(home / "publisher-cache"), "HOME": str(home),
        "HF_HUB_OFFLINE": "0",
    }


def published_files(hub: Hub, repo_id: str, cache: Path) -> dict[str, bytes]:
    path = Path(snapshot_download(repo_id, endpoint=hub.url, token=hub.token, cache_dir=cache))
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def differences(a: object, b: object, at: str = "") -> list[str]:
    """Where two manifests (parsed JSON) differ, as ``path: a != b`` lines (files keyed by path)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{at}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if all(isinstance(x, dict) and "path" in x for x in [*a, *b]):
            return differences({x["path"]: x for x in a}, {x["path"]: x for x in b}, at)
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{at}[{i}]")]
    return [] if a == b else [f"{at}: {a!r} != {b!r}"]


def assert_same_manifest(one: Path, two: Path) -> None:
    """Byte-identical manifests; otherwise name every field and file whose hash differs."""
    a, b = one.read_bytes(), two.read_bytes()
    assert a == b, "\n".join(["manifests differ:", *differences(json.loads(a), json.loads(b))])


def writes(hub: Hub, before: dict[str, int]) -> dict[str, int]:
    after = hub.server.app.stats
    return {k: after[k] - before.get(k, 0) for k in after if not k.startswith(("GET", "HEAD")) and after[k] != before.get(k, 0)
            and k != "POST /api/validate-yaml"}


def test_rebuild_elsewhere_publishes_nothing_and_no_machine_path_is_published(hub: Hub, tmp_path: Path) -> None:
    seed_standins(hub.url, hub.token, PARENTS, tmp_path / "standins")
    commits = {r: hub.api().list_repo_commits(r)[0].commit_id for r in PARENTS}

    # machine 1: Hub parents pinned by commit, its own HF cache and work folder
    one = tmp_path / "machine-one"
    env1 = hub_env(hub, one, one / "hf-cache")
    recipe1 = one / "recipes" / "merge.yaml"
    recipe1.parent.mkdir(parents=True)
    recipe1.write_text(RECIPE.format(a=f"acme/base-a@{commits['acme/base-a']}", b=f"acme/base-b@{commits['acme/base-b']}"))
    cli("build", recipe1, "--out", one / "work" / "out", "--quiet", env={**env1, "PYTHONHASHSEED": "0"})
    cli("publish", one / "work" / "out", env=env1)

    # machine 2: another HF cache, the parents named by their cache snapshot folders, another day
    two = tmp_path / "elsewhere"
    snaps = {r: Path(snapshot_download(r, endpoint=hub.url, token=hub.token, cache_dir=two / "cache")) for r in PARENTS}
    # another thread count and another string-hash seed: neither may show in what a version is
    env2 = {**hub_env(hub, two, two / "other-cache"), "PYTHONHASHSEED": "12345"}
    recipe2 = two / "merge.yaml"
    recipe2.write_text(RECIPE.format(a=snaps["acme/base-a"], b=snaps["acme/base-b"]))
    out2 = two / "builds" / "again"
    cli("build", recipe2, "--out", out2, "--quiet", "--threads", "1", env=env2)
    record = BuildRecord.model_validate_json((out2 / BUILD_RECORD_FILE).read_text())
    later = record.model_copy(update={"created": record.created.replace(year=record.created.year + 1)})
    (out2 / BUILD_RECORD_FILE).write_text(later.to_json())
    cli("card", out2, env=env2)  # the card now shows another date: the same card all the same

    out1 = one / "work" / "out"
    assert_same_manifest(out1 / "manifest.json", out2 / "manifest.json")
    assert (out1 / "README.md").read_text() != (out2 / "README.md").read_text()  # the date
    unpinned = (out2 / "variants/FP8/manifest.json").read_bytes()
    dry = cli("publish", out2, "--dry-run", env=env2)  # pins a hard-linked copy, never the build
    assert "would" not in dry.stdout and "conflict" not in dry.stdout, dry.stdout
    assert (out2 / "variants/FP8/manifest.json").read_bytes() == unpinned
    assert sorted(p.name for p in out2.parent.iterdir()) == ["again"]
    before = dict(hub.server.app.stats)
    heads = {r: hub.api().list_repo_commits(r)[0].commit_id for r in ("acme/merge", "acme/merge-FP8")}
    done = cli("publish", out2, env=env2)
    assert "up to date" in done.stdout and "published" not in done.stdout, done.stdout
    assert writes(hub, before) == {}
    assert {r: hub.api().list_repo_commits(r)[0].commit_id for r in heads} == heads
    # the FP8 repo's own manifest and card pin the merged commit; the rebuild was pinned to the same one
    merged_commit = hub.api().list_repo_refs("acme/merge").tags[0].target_commit
    assert_same_manifest(out1 / "variants/FP8/manifest.json", out2 / "variants/FP8/manifest.json")
    fp8 = published_files(hub, "acme/merge-FP8", tmp_path / "check-fp8")
    own = json.loads(fp8["manifest.json"])
    assert own["quantized_from"]["repo_id"] == "acme/merge" and own["quantized_from"]["revision"] == merged_commit
    assert own["out_dtype"] == "F8_E4M3" and [v["name"] for v in own["variants"]] == ["FP8"]
    fp8_card = fp8["README.md"].decode()
    assert f"at commit `{merged_commit}`" in fp8_card
    assert "**Weights dtype:** F8\\_E4M3" in fp8_card and "Output dtype" not in fp8_card

    # nothing on the Hub names a folder of either machine
    manifest = load_manifest(out2)
    assert [(i.ref, i.kind, i.repo_id, i.revision) for i in manifest.inputs] == [
        (f"{r}@{commits[r]}", "hub", r, commits[r]) for r in PARENTS
    ]
    machine = [str(tmp_path), str(Path.home()), str(ROOT_DIR), "/tmp/", "snapshots/", "models--"]
    for repo_id in ("acme/merge", "acme/merge-FP8"):
        files = published_files(hub, repo_id, tmp_path / "check" / repo_id)
        assert {"manifest.json", "recipe.yaml", "README.md", "config.json"} <= set(files)
        assert BUILD_RECORD_FILE not in files
        for name, data in files.items():
            for path in machine:
                assert path.encode() not in data, f"{repo_id}/{name} contains {path}"
    card = published_files(hub, "acme/merge", tmp_path / "check2")["README.md"].decode()
    assert "base_model:\n- acme/base-a\n- acme/base-b\n" in card


def test_local_parents_are_named_by_folder_and_marked_local(hub: Hub, tmp_path: Path) -> None:
    parents = tmp_path / "my" / "models"
    folders = {r: _standin(r, parents) for r in PARENTS}
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(a=folders["acme/base-a"], b=folders["acme/base-b"]))
    out = tmp_path / "out"
    cli("build", recipe, "--out", out, "--quiet", env=env)
    manifest = load_manifest(out)
    assert [(i.ref, i.kind, i.repo_id) for i in manifest.inputs] == [
        ("acme--base-a", "local", None), ("acme--base-b", "local", None)]
    text = (out / "recipe.yaml").read_text()
    assert "model: acme--base-a\n" in text and "# a rebuild anywhere" in text  # renamed in place, comments kept
    cli("publish", out, env=env)
    for repo_id in ("acme/merge", "acme/merge-FP8"):
        for name, data in published_files(hub, repo_id, tmp_path / "check" / repo_id).items():
            assert str(tmp_path).encode() not in data, f"{repo_id}/{name} holds a path of this machine"
    card = (out / "README.md").read_text()
    assert "| acme--base-a | local |" in card and "base_model" not in card.split("---")[1]
    assert json.loads((out / BUILD_RECORD_FILE).read_text())["parent_folders"]["acme--base-a"] == str(folders["acme/base-a"])


def _standin(repo_id: str, root: Path) -> Path:
    from publisher.demo import generate_standin

    return generate_standin(repo_id, root)


LORA_RECIPE = """\
# LoRA parents: adapters (and one base) read from folders of this machine, in each form mergekit reads
name: acme/lora-merge
version: 1.0.0
merge:
  merge_method: task_arithmetic
  base_model: acme/base-a@{sha}
  models:
    - model: acme/base-a@{sha}+{style}
      parameters: {{weight: 0.5}}
    - model: {{model: acme/base-b, lora: ../adapters/tone}}
      parameters: {{weight: 0.5}}
    - model:
        model: {{path: {local_base}}}
        lora: {{path: {chat}}}
      parameters: {{weight: 0.5}}
  dtype: bfloat16
quantize:
  - scheme: fp8-dynamic
card:
  license: apache-2.0
"""
MULTI_RECIPE = """\
name: acme/stage-one
version: 1.0.0
card: {{license: apache-2.0}}
merge_method: slerp
base_model: acme/base-a
slices:
  - sources:
      - model: acme/base-a
        layer_range: [0, 32]
      - model: acme/base-b+{style}
        layer_range: [0, 32]
parameters: {{t: 0.5}}
dtype: bfloat16
---
name: acme/multi
version: 1.0.0
merge_method: linear
models:
  - model: acme/stage-one
    parameters: {{weight: 0.5}}
  - model: ../models/acme--base-c
    parameters: {{weight: 0.5}}
dtype: bfloat16
card:
  license: apache-2.0
"""


def test_lora_and_multi_stage_parents_publish_no_path_of_this_machine(hub: Hub, tmp_path: Path) -> None:
    from publisher.standins import TINY
    from publisher.standins_lora import generate_lora

    seed_standins(hub.url, hub.token, PARENTS, tmp_path / "standins")
    sha = hub.api().list_repo_commits("acme/base-a")[0].commit_id
    work = tmp_path / "work"
    local_base = _standin("acme/base-c", work / "models")
    adapters = {name: generate_lora(work / "adapters" / name, TINY, seed=seed, base_path=str(local_base))
                for seed, name in enumerate(("style", "tone", "chat"))}
    (work / "recipes").mkdir()
    lora = work / "recipes" / "lora.yaml"
    lora.write_text(LORA_RECIPE.format(sha=sha, style=adapters["style"], local_base=local_base, chat=adapters["chat"]))
    multi = work / "recipes" / "multi.yaml"
    multi.write_text(MULTI_RECIPE.format(style=adapters["style"]))
    env = hub_env(hub, tmp_path / "home", tmp_path / "hf-cache")
    # plan reads the parents at once; the references to one repo (acme/base-a, acme/base-a+style) in turn
    pinned = json.loads(cli("plan", lora, "--json", env=env).stdout)["pinned"]
    assert pinned[f"acme/base-a@{sha}"] == pinned[f"acme/base-a@{sha}+{adapters['style']}"] == sha
    for recipe in (lora, multi):
        out = work / "out" / recipe.stem
        cli("build", recipe, "--out", out, "--quiet", env=env)
        cli("publish", out, env=env)

    published = load_recipe(work / "out" / "lora" / "recipe.yaml").merge
    assert [str(m.model) for m in published.models or []] == [
        f"acme/base-a@{sha}+style", "acme/base-b+tone", "acme--base-c+chat"]
    manifest = load_manifest(work / "out" / "lora")
    assert [(i.ref, i.kind, i.lora.ref if i.lora else None) for i in manifest.inputs] == [
        (f"acme/base-a@{sha}", "hub", None), (f"acme/base-a@{sha}+style", "hub", "style"),
        ("acme/base-b+tone", "hub", "tone"), ("acme--base-c+chat", "local", "chat")]
    machine = [str(tmp_path), str(Path.home()), str(ROOT_DIR), "/tmp/", "snapshots/", "models--", "../"]
    for repo_id in ("acme/lora-merge", "acme/lora-merge-FP8", "acme/stage-one", "acme/multi"):
        files = published_files(hub, repo_id, tmp_path / "check" / repo_id)
        assert {"manifest.json", "recipe.yaml", "README.md", "config.json"} <= set(files)
        for name, data in files.items():
            for path in machine:
                assert path.encode() not in data, f"{repo_id}/{name} contains {path}"
