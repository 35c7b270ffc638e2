"""Model references, read the way mergekit 0.1.5's ``ModelReference`` reads them.

mergekit accepts a model as a string ``path[@revision][+lora[@revision]]`` (a Hub repo id
or a local folder, optionally pinned, optionally with a PEFT adapter), or as a mapping
``{model: <path or {path, revision}>, lora: <path or {path, revision}>, override_architecture:
<class>}``. Whatever the form, a recipe keys its inputs by the canonical string (mergekit's
``str()`` of the reference, which leaves the architecture out), so ``{model: {path: a/b,
revision: v1}}`` and ``a/b@v1`` are the same input; an ``override_architecture`` is kept
beside it (``publisher/architectures.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REPO_PART = r"(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
REPO_ID_RE = re.compile(rf"^{REPO_PART}/{REPO_PART}$")
REVISION_RE = re.compile(r"^[A-Za-z0-9_.\-/]{1,200}$")


@dataclass(frozen=True)
class ModelPath:
    """A folder or repo id, optionally pinned to a revision."""

    path: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{self.path}@{self.revision}" if self.revision else self.path


@dataclass(frozen=True)
class ModelRef:
    """A parent: a model, and the LoRA adapter to apply to it (if any)."""

    model: ModelPath
    lora: ModelPath | None = None
    architecture: str | None = None  # mergekit's override_architecture (not part of the string)

    def __str__(self) -> str:
        return f"{self.model}+{self.lora}" if self.lora else str(self.model)


def _path(value: Any, what: str) -> ModelPath:
    if isinstance(value, ModelPath):
        return value
    if isinstance(value, str):
        if value.count("@") > 1:
            raise ValueError(f"{what} '{value}' has more than one '@'; use 'org/name@revision'")
        path, _, rev = value.partition("@")
        if not path.strip():
            raise ValueError(f"empty {what}")
        return ModelPath(path, rev or None)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"path", "revision"})
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' in {what}; use 'path' and 'revision'")
        if not isinstance(value.get("path"), str) or not value["path"].strip():
            raise ValueError(f"{what} needs a 'path'")
        pinned = value.get("revision")
        return ModelPath(value["path"], str(pinned) if pinned not in (None, "") else None)
    raise ValueError(f"{what} must be a string or a mapping, got {value!r}")


def parse_reference(value: Any) -> ModelRef:
    """Any form mergekit's ModelReference accepts -> ModelRef (ValueError with the reason)."""
    if isinstance(value, ModelRef):
        return value
    if isinstance(value, str):
        chunks = value.split("+")
        if len(chunks) > 2:
            raise ValueError(f"cannot parse model reference '{value}': more than one '+'")
        return ModelRef(_path(chunks[0], "model path"), _path(chunks[1], "LoRA path") if len(chunks) == 2 else None)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"model", "lora", "override_architecture"})
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' in a model reference; use 'model' and 'lora'")
        arch = value.get("override_architecture")
        if arch is not None and (not isinstance(arch, str) or not arch.strip()):
            raise ValueError(f"override_architecture must be an architecture class name such as LlamaForCausalLM, got {arch!r}")
        if "model" not in value:
            raise ValueError("a model reference mapping needs 'model'")
        lora = value.get("lora")
        return ModelRef(_path(value["model"], "model path"), _path(lora, "LoRA path") if lora is not None else None, arch)
    raise ValueError(f"a model reference must be a string or a mapping, got {value!r}")


def canonical(value: Any) -> str:
    """The canonical string of a reference (mergekit's ``str(ModelReference)``)."""
    return str(parse_reference(value))


def base_of(ref: str) -> str:
    """The model part of a reference, without its LoRA (for lineage and tokenizer sources)."""
    return str(parse_reference(ref).model)
