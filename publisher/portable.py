"""Names that travel: a parent read from a folder of the build machine, named by what it is.

Nothing published (manifest, card, recipe copy) may hold a path of the machine that built it.
A folder that is a Hugging Face cache snapshot (``…/models--org--name/snapshots/<sha>``) *is*
``org/name`` at commit ``<sha>``: it is named so, and a rebuild from the published recipe
fetches exactly it from the Hub. Any other folder is named by its folder name and marked
local: the card says to put a folder of that name beside the recipe.

``rewrite_refs`` renames model references inside a recipe's text in place (only the scalars
that name a model, so comments, order and formatting stay as the author wrote them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from publisher.references import ModelPath, parse_reference

SNAPSHOT_RE = re.compile(r"^models--(?P<org>[^/]+?)--(?P<name>[^/]+)$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
MODEL_KEYS = frozenset({"model", "base_model", "tokenizer_source"})
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/@]*$")


@dataclass(frozen=True)
class PortableName:
    ref: str  # what the published recipe and manifest call the parent
    kind: str  # "hub" for a cache snapshot, "local" for any other folder
    repo_id: str | None
    revision: str | None


def snapshot_repo(folder: Path) -> tuple[str, str] | None:
    """(repo id, commit) when ``folder`` is a huggingface_hub cache snapshot of a model repo."""
    parts = Path(folder).parts
    if len(parts) < 3 or parts[-2] != "snapshots" or not SHA_RE.match(parts[-1]):
        return None
    m = SNAPSHOT_RE.match(parts[-3])
    if m is None or "--" in m.group("name"):
        return None
    return f"{m.group('org')}/{m.group('name')}", parts[-1]


def portable_name(folder: Path) -> PortableName:
    """The machine-independent name of a parent folder (see the module docstring)."""
    snap = snapshot_repo(Path(folder).absolute()) or snapshot_repo(Path(folder).resolve())
    if snap is not None:
        repo_id, sha = snap
        return PortableName(f"{repo_id}@{sha}", "hub", repo_id, sha)
    return PortableName(Path(folder).resolve().name, "local", None, None)


def portable_names(folders: dict[str, Path]) -> dict[str, PortableName]:
    """Portable names of local parents (recipe ref -> folder), made unique.

    Two different folders with the same name get as many of their parent folders' names
    as it takes to tell them apart (``x/model``, ``y/model``).
    """
    names = {ref: portable_name(folder) for ref, folder in folders.items()}
    resolved = {ref: Path(folder).resolve() for ref, folder in folders.items()}
    depth = 1
    while True:
        local = {ref: n for ref, n in names.items() if n.kind == "local"}
        by_name: dict[str, set[Path]] = {}
        for ref, n in local.items():
            by_name.setdefault(n.ref, set()).add(resolved[ref])
        clashes = {name for name, paths in by_name.items() if len(paths) > 1}
        if not clashes or depth > 8:
            return names
        depth += 1
        for ref, n in local.items():
            if n.ref in clashes:
                parts = resolved[ref].parts[-depth:]
                names[ref] = PortableName("/".join(parts), "local", None, None)


def _yaml_scalar(value: str) -> str:
    return value if _PLAIN.match(value) and value not in ("null", "true", "false", "~") else json.dumps(value)


Rename = tuple[yaml.ScalarNode, str]  # a scalar of the recipe's text and the YAML text that replaces it
_NULL_TAG = "tag:yaml.org,2002:null"


def _renames(node: yaml.Node, names: dict[str, str]) -> list[Rename]:
    """Every model reference under ``node`` (a model key's value) that ``names`` renames."""
    out: list[Rename] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in MODEL_KEYS:
                out += _reference_renames(value, names)
            else:
                out += _renames(value, names)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _renames(item, names)
    return out


def _reference_renames(node: yaml.Node, names: dict[str, str]) -> list[Rename]:
    """A model reference in any form mergekit reads: ``a[@rev][+lora]``, ``{path, revision}``, or
    ``{model: ..., lora: ...}`` (each part a string or a ``{path, revision}``)."""
    if isinstance(node, yaml.ScalarNode):
        return [(node, _yaml_scalar(names[node.value]))] if node.value in names else []
    keys = _keys(node)
    if keys is None:
        return _renames(node, names)
    if set(keys) <= {"path", "revision"}:
        path = keys.get("path")
        return [(path, _yaml_scalar(names[path.value]))] if isinstance(path, yaml.ScalarNode) and path.value in names else []
    if not set(keys) <= {"model", "lora", "override_architecture"}:
        return _renames(node, names)
    try:
        old = parse_reference({k: _plain(v) for k, v in keys.items()})
    except (ValueError, TypeError):
        return []
    new_name = names.get(str(old)) or names.get(str(old.model))
    if new_name is None:
        return []
    new = parse_reference(new_name)
    out = _part_renames(keys.get("model"), old.model, new.model)
    if old.lora is not None and new.lora is not None:
        out += _part_renames(keys.get("lora"), old.lora, new.lora)
    return out


def _part_renames(node: yaml.Node | None, old: ModelPath, new: ModelPath) -> list[Rename]:
    """The model or the adapter of a mapping-form reference, renamed where it changed."""
    if node is None or old == new:
        return []
    if isinstance(node, yaml.ScalarNode):
        return [(node, _yaml_scalar(str(new)))]
    keys = _keys(node) or {}
    path, revision = keys.get("path"), keys.get("revision")
    if not isinstance(path, yaml.ScalarNode):
        return []
    if not isinstance(revision, yaml.ScalarNode):
        return [(path, _yaml_scalar(str(new)))]
    return [(path, _yaml_scalar(new.path)), (revision, _yaml_scalar(new.revision) if new.revision else "null")]


def _keys(node: yaml.Node) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _plain(node: yaml.Node) -> object:
    """A reference's part as Python (strings, null, ``{path, revision}``): enough for parse_reference."""
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == _NULL_TAG else node.value
    keys = _keys(node)
    if keys is None:
        raise ValueError("not a model reference")
    return {k: _plain(v) for k, v in keys.items()}


def rewrite_refs(text: bytes, names: dict[str, str], *, skip_keys: tuple[str, ...] = ("card",)) -> bytes:
    """``text`` with every model reference found in ``names`` replaced by its new name.

    Top-level sections in ``skip_keys`` (the card's comparisons name models that are not
    parents) are left alone. The result parses to the same recipe with the new names.
    """
    if not names:
        return text
    source = text.decode("utf-8")
    root = yaml.compose(source, Loader=yaml.SafeLoader)
    if root is None:
        return text
    if isinstance(root, yaml.MappingNode):
        renames = [
            r
            for key, value in root.value
            if not (isinstance(key, yaml.ScalarNode) and key.value in skip_keys)
            for r in (
                _reference_renames(value, names)
                if isinstance(key, yaml.ScalarNode) and key.value in MODEL_KEYS
                else _renames(value, names)
            )
        ]
    else:
        renames = _renames(root, names)
    spans = sorted(((n.start_mark.index, n.end_mark.index, new) for n, new in renames), reverse=True)
    for start, end, new in spans:
        source = source[:start] + new + source[end:]
    return source.encode("utf-8")
