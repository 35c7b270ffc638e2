"""Helpers for the Hub tests: build directories made of stand-ins, snapshot comparisons.

huggingface_hub reads HF_HUB_DISABLE_XET (and HF_ENDPOINT) at import, so they are set here,
before anything imports it; the constant is also forced in case another test module imported
the client first. Every client call passes ``endpoint=`` explicitly.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from huggingface_hub import HfApi, constants

from publisher.build import variant_manifest
from publisher.check.run import check_build
from publisher.check.settings import ChecksSection
from publisher.hub.remote import Retry
from publisher.hub.server import LocalHub
from publisher.manifest import FileEntry, Manifest, Variant
from publisher.standins import TINY, MistralShape, Recipe, generate_model

constants.HF_HUB_DISABLE_XET = True

# Big enough to need LFS multipart with the test server's 256 kB chunks, small enough to be quick.
MEDIUM = MistralShape(hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, vocab=4096)
FAST_RETRY = Retry(attempts=4, base_s=0.05, max_s=0.2)


@dataclass
class Hub:
    server: LocalHub
    url: str
    token: str  # alice, write
    root: Path

    def api(self, token: str | None = None) -> HfApi:
        return HfApi(endpoint=self.url, token=token or self.token)


def card(repo_id: str, *, license: str = "apache-2.0", extra: str = "") -> str:
    return (
        "---\n"
        "base_model:\n- mistralai/Mistral-7B-v0.1\n- HuggingFaceH4/zephyr-7b-beta\n"
        "base_model_relation: merge\n"
        f"license: {license}\n"
        "library_name: transformers\npipeline_tag: text-generation\ntags:\n- merge\n"
        "---\n"
        f"# {repo_id}\n\nA tiny stand-in merge for tests.{extra}\n"
    )


def _entries(folder: Path, skip_variants: bool) -> list[FileEntry]:
    out = []
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if not f.is_file() or rel in ("README.md", "manifest.json"):
            continue
        if skip_variants and rel.startswith("variants/"):
            continue
        out.append(FileEntry(path=rel, size=f.stat().st_size, sha256=hashlib.sha256(f.read_bytes()).hexdigest()))
    return out


def make_build(
    root: Path,
    *,
    repo_id: str = "alice/tiny-merge",
    version: str = "1.0.0",
    seed: int = 1,
    shape: MistralShape = TINY,
    variants: bool = True,
    private: bool | None = None,
    card_extra: str = "",
    commit_message: str | None = None,
    max_shard_bytes: int = 5_000_000_000,
) -> Path:
    """A build directory as ``publisher build`` lays it out, with a hand-written manifest."""
    if root.exists():
        shutil.rmtree(root)
    generate_model(root, shape, recipe=Recipe(seed=seed), max_shard_bytes=max_shard_bytes)
    (root / "README.md").write_text(card(repo_id, extra=card_extra))
    recipe = f"name: {repo_id}\nversion: {version}\nmerge:\n  merge_method: slerp\n"
    if private is not None or commit_message is not None:
        recipe += "publish:\n"
        recipe += f"  private: {str(private).lower()}\n" if private is not None else ""
        recipe += f"  commit_message: {commit_message}\n" if commit_message is not None else ""
    (root / "recipe.yaml").write_text(recipe)
    manifest_variants = [
        Variant(name="merged", repo_id=repo_id, folder="", dtype="BF16", parameter_count=1,
                files=_entries(root, skip_variants=True))
    ]
    if variants:
        fp8 = root / "variants" / "FP8"
        generate_model(fp8, shape, recipe=Recipe(seed=seed + 1000), max_shard_bytes=max_shard_bytes)
        (fp8 / "README.md").write_text(card(f"{repo_id}-FP8", extra=card_extra))
        manifest_variants.append(
            Variant(name="FP8", repo_id=f"{repo_id}-FP8", folder="variants/FP8",
                    quantization={"scheme": "fp8-dynamic"}, dtype="F8_E4M3", parameter_count=1,
                    files=_entries(fp8, skip_variants=False))
        )
    manifest = Manifest(
        tool="publisher 0.1.0", recipe_name=repo_id,
        recipe_version=version, recipe_sha256=hashlib.sha256(recipe.encode()).hexdigest(),
        merge_method="slerp", seed=0, compute_dtype=None, out_dtype="bfloat16", inputs=[],
        variants=manifest_variants,
    )
    (root / "manifest.json").write_text(manifest.to_json())
    for v in manifest_variants[1:]:
        (root / v.folder / "manifest.json").write_text(variant_manifest(manifest, v).to_json())
    # the release gate: publish refuses an unchecked build (structural checks; no forward pass)
    check_build(root, settings=ChecksSection(measure=False))
    return root


def build_files(build: Path, variant_folder: str = "") -> dict[str, bytes]:
    """What a repo should hold for a build's variant: every file but variants/ (merged)."""
    folder = build / variant_folder if variant_folder else build
    out = {}
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and not (not variant_folder and rel.startswith("variants/")):
            out[rel] = f.read_bytes()
    return out


def snapshot_files(path: Path) -> dict[str, bytes]:
    return {
        f.relative_to(path).as_posix(): f.read_bytes()
        for f in sorted(path.rglob("*"))
        if f.is_file() and f.name != ".gitattributes"
    }


def read_line(stream: IO[Any], timeout_s: float = 60.0) -> str:
    """One line from a child's pipe, or a failure after ``timeout_s``: a child that hangs before
    printing must fail the test, not hang the suite."""
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, f"no line from the child within {timeout_s:.0f} s"
    line = stream.readline()
    return line.decode() if isinstance(line, bytes) else str(line)
