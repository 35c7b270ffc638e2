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


def _model_scalars(node: yaml.Node) -> list[yaml.ScalarNode]:
    """Scalars that are the value of a model key (``model``, ``base_model``, ``tokenizer_source``)."""
    out: list[yaml.ScalarNode] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in MODEL_KEYS and isinstance(value, yaml.ScalarNode):
                out.append(value)
            elif isinstance(key, yaml.ScalarNode) and key.value in MODEL_KEYS and _path_of(value) is not None:
                out.append(_path_of(value))  # type: ignore[arg-type]  # mergekit's {path: ..., revision: ...}
            else:
                out += _model_scalars(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _model_scalars(item)
    return out


def _path_of(node: yaml.Node) -> yaml.ScalarNode | None:
    """The ``path`` scalar of a ``{path: ..., revision: ...}`` model mapping."""
    if not isinstance(node, yaml.MappingNode):
        return None
    keys = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    path = keys.get("path")
    return path if isinstance(path, yaml.ScalarNode) and set(keys) <= {"path", "revision"} else None


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
        nodes = [
            s
            for key, value in root.value
            if not (isinstance(key, yaml.ScalarNode) and key.value in skip_keys)
            for s in (
                [value]
                if isinstance(key, yaml.ScalarNode) and key.value in MODEL_KEYS and isinstance(value, yaml.ScalarNode)
                else _model_scalars(value)
            )
        ]
    else:
        nodes = _model_scalars(root)
    spans = sorted(
        ((n.start_mark.index, n.end_mark.index, names[n.value]) for n in nodes if n.value in names),
        reverse=True,
    )
    for start, end, new in spans:
        source = source[:start] + _yaml_scalar(new) + source[end:]
    return source.encode("utf-8")
