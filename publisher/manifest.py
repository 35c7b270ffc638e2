"""The build directory and its manifest: the one hand-off from the engine to cards and publishing.

Layout of a build (``publisher build RECIPE --out DIR``)::

    DIR/                         the merged model, loadable by from_pretrained(DIR)
      config.json  model-0000N-of-0000M.safetensors  model.safetensors.index.json
      tokenizer files, generation_config.json, README.md (the card)
      recipe.yaml                the recipe as given, local parents named portably (see portable.py)
      manifest.json              this module's Manifest: the version's identity, published
      build.json                 this machine's record (BuildRecord): when, how long, which
                                 folders; never published
      variants/<suffix>/         one folder per quantized variant (e.g. variants/FP8/), each a
                                 complete model folder with its own README.md and manifest.json

The merged variant is published from DIR minus ``variants/`` and ``manifest.json`` is
published with it; each variant folder is published as its own repo, with its own manifest.
Later stages read only the manifests and the files, never the engine.

A manifest holds only what the version *is* (inputs by portable name, revision and sha256,
outputs by sha256, tool, seed): the same recipe rebuilt on another machine, in another
folder, on another day writes the same bytes, so publishing the rebuild publishes nothing.
What differs between builds of the same content (the time, the timings, the folders read)
lives in ``build.json``, beside it, for people and for the card's default date.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from publisher.errors import OutputError

MANIFEST_FILE = "manifest.json"
BUILD_RECORD_FILE = "build.json"
RECIPE_FILE = "recipe.yaml"
VARIANTS_DIR = "variants"
MANIFEST_SCHEMA = 2
QUANTIZE_ONLY = "none"  # Manifest.merge_method of a standalone quantization (``publisher quantize``)
_LEGACY_FIELDS = ("created", "timings")  # schema 1 kept these (and input paths) in the manifest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """A file of a variant, relative to the variant's folder."""

    path: str
    size: int
    sha256: str


class LoraInput(_Strict):
    """The LoRA adapter applied to a parent (``base+lora``), named portably like any parent."""

    ref: str
    repo_id: str | None = None
    revision: str | None = None


class InputModel(_Strict):
    """A parent as it was actually used: enough to fetch exactly the same bytes again.

    Never a path of the build machine: a Hub parent (or a folder that is a Hugging Face cache
    snapshot) is ``org/name`` at its commit; any other folder is ``kind: local`` under its
    folder name.
    """

    ref: str  # as the published recipe.yaml names it (a local folder: its folder name)
    kind: Literal["local", "hub", "recipe"]
    repo_id: str | None = None
    revision: str | None = None  # the commit sha actually used (hub / recipe parents)
    files: list[FileEntry]  # safetensors + config.json (+ the adapter's files), with sha256
    lora: LoraInput | None = None  # for ``base+lora``: ref is both, repo_id/revision the base's

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and "path" in data:
            data = {k: v for k, v in data.items() if k != "path"}
        return data


class QuantizedFrom(_Strict):
    """The model a quantized variant was made from: its repo, its commit once known, its files."""

    ref: str  # the repo id, or a local folder's name
    repo_id: str | None = None
    revision: str | None = None  # the BF16 repo's commit: set when it is published (publish/release)
    files: list[FileEntry]  # the source's weights and config, with sha256: a content pin


class Variant(_Strict):
    """One published unit: the merged model or a quantized copy of it."""

    name: str  # "merged" or the quantize suffix, e.g. "FP8"
    repo_id: str | None  # where it publishes; None when the recipe has no name
    folder: str  # relative to the build dir: "" for merged, "variants/FP8" for a variant
    quantization: dict[str, Any] | None = None  # {"scheme": "fp8-dynamic", ...}; None for merged
    dtype: str  # dominant tensor dtype, e.g. "BF16" or "F8_E4M3"
    parameter_count: int
    files: list[FileEntry]  # every file of the folder except README.md (cards are re-rendered)


class Timings(_Strict):
    resolve_s: float = 0.0
    merge_s: float = 0.0
    total_s: float = 0.0


class Manifest(_Strict):
    """What a version is; byte-identical for every build of the same content (see the module doc)."""

    schema_version: int = MANIFEST_SCHEMA
    tool: str  # "publisher 0.1.0"
    recipe_name: str | None
    recipe_version: str | None
    recipe_sha256: str  # of the published recipe.yaml
    merge_method: str  # "none" for a standalone quantization (``publisher quantize``)
    seed: int
    compute_dtype: str | None  # None: mergekit's per-method precision; "float32": more accurate
    out_dtype: str  # the dominant dtype of this repo's weights, e.g. "BF16" or "F8_E4M3"
    inputs: list[InputModel]
    variants: list[Variant]
    quantized_from: QuantizedFrom | None = None  # a variant's (or a quantize output's) own manifest

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in _LEGACY_FIELDS):
            data = {k: v for k, v in data.items() if k not in _LEGACY_FIELDS}
        return data

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


class BuildRecord(_Strict):
    """This machine's record of a build (``build.json``): never published, never compared."""

    created: datetime | None = None  # build time (UTC); None for a copy of a published version
    timings: Timings = Field(default_factory=Timings)
    recipe_path: str | None = None  # the recipe file as given
    recipe_sha256: str | None = None  # of the recipe as given (before parents were named portably)
    parent_folders: dict[str, str] = Field(default_factory=dict)  # manifest ref -> folder read
    card_settings: dict[str, Any] = Field(default_factory=dict)  # how the cards were last rendered

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def load_build_record(build_dir: Path) -> BuildRecord | None:
    """``build.json`` of a build, or None (a copy of a published version has none)."""
    path = Path(build_dir) / BUILD_RECORD_FILE
    try:
        return BuildRecord.model_validate_json(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def write_build_record(build_dir: Path, record: BuildRecord) -> None:
    path = Path(build_dir) / BUILD_RECORD_FILE
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(record.to_json())
    os.replace(tmp, path)


def load_manifest(build_dir: Path) -> Manifest:
    path = Path(build_dir) / MANIFEST_FILE
    if not path.is_file():
        raise OutputError(
            "no manifest.json: not a publisher build",
            where=str(build_dir),
            fix="run `publisher build RECIPE --out DIR` first",
        )
    try:
        return Manifest.model_validate_json(path.read_text())
    except ValueError as e:
        first = str(e).splitlines()[0]
        raise OutputError(f"manifest.json is invalid ({first})", where=str(path)) from e
