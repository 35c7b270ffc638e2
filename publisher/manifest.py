"""The build directory and its manifest: the one hand-off from the engine to cards and publishing.

Layout of a build (``publisher build RECIPE --out DIR``)::

    DIR/                         the merged model, loadable by from_pretrained(DIR)
      config.json  model-0000N-of-0000M.safetensors  model.safetensors.index.json
      tokenizer files, generation_config.json, README.md (the card)
      recipe.yaml                the recipe exactly as given
      manifest.json              this module's Manifest
      variants/<suffix>/         one folder per quantized variant (e.g. variants/FP8/), each a
                                 complete model folder with its own README.md

The merged variant is published from DIR minus ``variants/`` and ``manifest.json`` is
published with it; each variant folder is published as its own repo. Later stages read
only this manifest and the files, never the engine.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from publisher.errors import OutputError

MANIFEST_FILE = "manifest.json"
RECIPE_FILE = "recipe.yaml"
VARIANTS_DIR = "variants"
MANIFEST_SCHEMA = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """A file of a variant, relative to the variant's folder."""

    path: str
    size: int
    sha256: str


class LoraInput(_Strict):
    """The LoRA adapter applied to a parent (``base+lora``)."""

    ref: str
    repo_id: str | None = None
    revision: str | None = None
    path: str


class InputModel(_Strict):
    """A parent as it was actually used: enough to fetch exactly the same bytes again."""

    ref: str  # as written in the recipe
    kind: Literal["local", "hub", "recipe"]
    repo_id: str | None = None
    revision: str | None = None  # the commit sha actually used (hub / recipe parents)
    path: str  # the folder read
    files: list[FileEntry]  # safetensors + config.json (+ the adapter's files), with sha256
    lora: LoraInput | None = None  # for ``base+lora``: ref/repo_id/revision above are the base's


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
    schema_version: int = MANIFEST_SCHEMA
    tool: str  # "publisher 0.1.0"
    created: datetime  # build time (UTC)
    recipe_name: str | None
    recipe_version: str | None
    recipe_sha256: str
    merge_method: str
    seed: int
    compute_dtype: str | None  # None: mergekit's per-method precision; "float32": more accurate
    out_dtype: str
    inputs: list[InputModel]
    variants: list[Variant]
    timings: Timings = Field(default_factory=Timings)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


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
