"""What a card says about where a model comes from, with no path of the build machine in it.

- the date a card shows by default (the build's date from ``build.json``, else today);
- where a parent was read on this machine (``build.json``; absent from published copies), for
  reading a local parent's own card;
- "How to reproduce": the install line, the build command with ``--out``, and the recipe with
  every Hub parent pinned to the commit that was merged (local parents are named by their
  folder name and listed, to be put beside the recipe).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from publisher.manifest import MANIFEST_FILE, InputModel, Manifest, Variant, load_build_record
from publisher.portable import rewrite_refs

DIST_NAME = "publisher"


def default_published(build_dir: Path) -> date:
    """The build's date when this machine built it, else today (UTC)."""
    record = load_build_record(build_dir)
    return record.created.date() if record is not None and record.created else datetime.now(UTC).date()


def built_at(build_dir: Path) -> datetime:
    """When this machine built it (``build.json``), else when its manifest.json was written."""
    record = load_build_record(build_dir)
    if record is not None and record.created:
        return record.created
    return datetime.fromtimestamp((Path(build_dir) / MANIFEST_FILE).stat().st_mtime, UTC).replace(microsecond=0)


def parent_folder(build_dir: Path, inp: InputModel) -> Path | None:
    """The folder this machine read a parent from, when it still has it."""
    record = load_build_record(build_dir)
    folder = record.parent_folders.get(inp.ref) if record is not None else None
    return Path(folder) if folder and Path(folder).is_dir() else None


def quantized_from_revision(build_dir: Path, variant: Variant) -> str | None:
    """The merged model's commit a variant was quantized from, once known (its own manifest)."""
    path = Path(build_dir) / variant.folder / MANIFEST_FILE
    if not variant.folder or not path.is_file():
        return None
    try:
        own = Manifest.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None
    return own.quantized_from.revision if own.quantized_from else None


def pinned_recipe(recipe_text: bytes, inputs: list[InputModel]) -> bytes:
    """The recipe with each Hub parent named ``org/name@<commit>``: it builds exactly these parents."""
    pins = {
        inp.ref: f"{inp.repo_id}@{inp.revision}"
        for inp in inputs
        if inp.kind in ("hub", "recipe") and inp.repo_id and inp.revision and "@" not in inp.ref
    }
    return rewrite_refs(recipe_text, pins)


def install_line(tool: str) -> str:
    """``pip install "publisher==X"`` for the version that built the model (same bytes)."""
    version = tool.split(" ", 1)[1] if tool.startswith(f"{DIST_NAME} ") else None
    return f'pip install "{DIST_NAME}=={version}"' if version else f"pip install {DIST_NAME}"


def reproduce_context(manifest: Manifest, recipe_text: bytes, model_name: str) -> dict[str, Any]:
    """The card's ``reproduce`` variables: recipe (pinned), commands, local parents."""
    out_dir = model_name.split("/")[-1] or "model"
    commands = [install_line(manifest.tool), f"publisher build recipe.yaml --out {out_dir}"]
    return {
        "recipe": pinned_recipe(recipe_text, manifest.inputs).decode("utf-8", errors="replace"),
        "recipe_name": "recipe.yaml",
        "command": "\n".join(commands),
        "commands": commands,
        "out": out_dir,
        "local_parents": [inp.ref for inp in manifest.inputs if inp.kind == "local"],
    }
