"""Portable names of parents read from folders, and renaming them inside a recipe's text."""

from __future__ import annotations

from pathlib import Path

import yaml

from publisher.portable import portable_name, portable_names, rewrite_refs, snapshot_repo

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_a_cache_snapshot_is_its_repo_at_its_commit(tmp_path: Path) -> None:
    snap = tmp_path / "hub" / "models--org--My.Model-7B" / "snapshots" / SHA
    snap.mkdir(parents=True)
    assert snapshot_repo(snap) == ("org/My.Model-7B", SHA)
    name = portable_name(snap)
    assert (name.ref, name.kind, name.repo_id, name.revision) == (f"org/My.Model-7B@{SHA}", "hub", "org/My.Model-7B", SHA)
    assert snapshot_repo(tmp_path / "hub" / "models--org--x" / "snapshots" / "main") is None  # not a commit
    assert snapshot_repo(tmp_path / "datasets--org--x" / "snapshots" / SHA) is None


def test_other_folders_are_named_by_folder_and_told_apart(tmp_path: Path) -> None:
    a, b, c = tmp_path / "x" / "model", tmp_path / "y" / "model", tmp_path / "z" / "other"
    for p in (a, b, c):
        p.mkdir(parents=True)
    names = portable_names({"1": a, "2": b, "3": c, "4": a})
    assert {k: (n.ref, n.kind) for k, n in names.items()} == {
        "1": ("x/model", "local"), "2": ("y/model", "local"), "3": ("other", "local"), "4": ("x/model", "local")}


def test_rewrite_keeps_the_text_and_renames_only_model_references() -> None:
    text = b"""\
# my merge
merge:
  slices:
    - sources:
        - model: /home/me/a   # the base
          layer_range: [0, 32]
        - model: {path: "/home/me/b", revision: null}
          layer_range: [0, 32]
  base_model: /home/me/a
  tokenizer_source: /home/me/a
  merge_method: slerp
card:
  comparisons: [{model: /home/me/a}]
"""
    out = rewrite_refs(text, {"/home/me/a": "a", "/home/me/b": "org/b@" + SHA}).decode()
    assert out.startswith("# my merge\n") and "- model: a   # the base\n" in out
    data = yaml.safe_load(out)
    assert data["merge"]["base_model"] == "a" and data["merge"]["tokenizer_source"] == "a"
    assert data["merge"]["slices"][0]["sources"][1]["model"]["path"] == "org/b@" + SHA
    assert data["card"]["comparisons"] == [{"model": "/home/me/a"}]  # not a parent: left alone
    assert rewrite_refs(text, {}) == text


def test_rewrite_renames_each_part_of_a_mapping_form_lora_reference() -> None:
    text = b"""\
models:
  - model: {model: org/base, lora: ../adapters/x}
  - model:
      model: {path: /home/me/base, revision: null}
      lora: {path: /home/me/y}
  - model: /home/me/base+/home/me/y
"""
    names = {"org/base+../adapters/x": "org/base+x", "/home/me/base+/home/me/y": "base+y"}
    data = yaml.safe_load(rewrite_refs(text, names))
    assert [m["model"] for m in data["models"]] == [
        {"model": "org/base", "lora": "x"},
        {"model": {"path": "base", "revision": None}, "lora": {"path": "y"}},
        "base+y",
    ]
