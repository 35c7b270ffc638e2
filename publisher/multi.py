"""mergekit-multi files: several ``---``-separated merge documents built as stages of one recipe.

Each document with a ``name:`` is an intermediate stage; the one without is the final merge.
A document names a stage by its name wherever it names a model. Stages are built in
dependency order into ``<out>.stages/<name>/`` (beside the output, with their own manifest
and card), and each is cached by a content key: the sha256 of its document (its local
parents made absolute), the keys of the stages it reads, and the size and mtime of its local
parents' files. A stage whose key is unchanged is reused; any change rebuilds it (mergekit-
multi's ``--lazy`` reuses a stage that merely exists, stale or not). The final merge then reads
the stage folders like local parents, so its card's lineage goes through every stage's card
down to the Hub parents (mergekit-multi's final card drops it).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import RecipeError
from publisher.portable import rewrite_refs
from publisher.references import ModelPath, ModelRef, parse_reference
from publisher.sources import local_candidate

STAGE_KEY = "stage.key"
MODEL_KEYS = ("model", "base_model", "tokenizer_source", "source")


@dataclass
class Document:
    index: int
    text: str
    data: dict[str, Any]
    name: str | None
    line: int


def split_documents(path: Path) -> list[Document] | None:
    """The documents of a multi-document file, or None for an ordinary one-document recipe."""
    text = path.read_text()
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None  # reported with file:line by the ordinary loader
    nodes = [n for n in nodes if n is not None]
    if len(nodes) <= 1:
        return None
    docs = []
    for i, node in enumerate(nodes):
        chunk = text[node.start_mark.index : node.end_mark.index] + "\n"
        data = yaml.safe_load(chunk)
        where = f"{path}:{node.start_mark.line + 1}"
        if not isinstance(data, dict):
            raise RecipeError(f"document {i + 1} is not a mapping", where=where)
        name = data.get("name")
        docs.append(Document(i, chunk, data, str(name) if name is not None else None, node.start_mark.line + 1))
    finals = [d for d in docs if d.name is None]
    if not finals:
        docs[-1].name = None  # all named: the last document is the final merge (its name: our repo id)
        finals = [docs[-1]]
    if len(finals) != 1:
        raise RecipeError(
            f"a multi-document recipe needs one final merge (one document without 'name:'), got {len(finals)}",
            where=str(path),
            fix="name every intermediate merge and leave the final one unnamed",
        )
    names = [d.name for d in docs if d.name]
    if len(set(names)) != len(names):
        raise RecipeError("two documents have the same name", where=str(path), fix="give each stage its own name")
    return docs


def _refs(data: Any) -> list[str]:
    """Every model reference string in a document."""
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k in MODEL_KEYS and isinstance(v, str):
                out.append(v)
            else:
                out += _refs(v)
    elif isinstance(data, list):
        for v in data:
            out += _refs(v)
    return out


def _renamed(ref: str, stages: dict[str, Path], recipe_dir: Path) -> str | None:
    """The reference with a stage name or a relative local folder replaced by an absolute path."""
    if ref in ("base", "union"):
        return None
    try:
        parsed = parse_reference(ref)
    except ValueError:
        return None

    def fix(p: ModelPath) -> ModelPath:
        if p.path in stages:
            return ModelPath(str(stages[p.path]), p.revision)
        local = local_candidate(p.path, recipe_dir)
        return ModelPath(str(local), p.revision) if local is not None else p

    new = str(ModelRef(fix(parsed.model), fix(parsed.lora) if parsed.lora else None))
    return new if new != ref else None


def _depends(doc: Document, names: set[str]) -> set[str]:
    deps = set()
    for ref in _refs(doc.data):
        try:
            parsed = parse_reference(ref)
        except ValueError:
            continue
        deps |= {p.path for p in (parsed.model, parsed.lora) if p is not None and p.path in names}
    return deps


def _order(docs: list[Document], path: Path) -> list[Document]:
    names = {d.name for d in docs if d.name}
    deps = {d.index: _depends(d, names) for d in docs}
    by_name = {d.name: d for d in docs if d.name}
    done: set[str] = set()
    order: list[Document] = []
    visiting: set[str] = set()

    def visit(d: Document) -> None:
        key = d.name or ""
        if key in done:
            return
        if key in visiting:
            raise RecipeError(f"stages depend on each other in a cycle (through '{key}')", where=f"{path}:{d.line}")
        visiting.add(key)
        for dep in sorted(deps[d.index]):
            visit(by_name[dep])
        visiting.discard(key)
        done.add(key)
        order.append(d)

    for d in docs:
        visit(d)
    return order


def _parent_identity(refs: list[str]) -> list[str]:
    """Size and mtime of the weights and config of every local parent folder (absolute refs)."""
    out = []
    for ref in refs:
        parsed = parse_reference(ref)
        for p in (parsed.model, parsed.lora):
            folder = Path(p.path) if p is not None else None
            if folder is None or not folder.is_dir():
                continue
            for f in sorted([*folder.glob("*.safetensors"), *folder.glob("*.json")]):
                st = f.stat()
                out.append(f"{f}|{st.st_size}|{st.st_mtime_ns}")
    return out


def build_multi(path: Path, out: Path, docs: list[Document], build_one: Any) -> Any:
    """Build every stage (cached by content key), then the final merge into ``out``."""
    out = Path(out).absolute()
    stages_dir = out.parent / f"{out.name}.stages"
    stages_dir.mkdir(parents=True, exist_ok=True)
    folders = {d.name: stages_dir / d.name for d in docs if d.name}
    keys: dict[str, str] = {}
    result = None
    for doc in _order(docs, path):
        names = {r: new for r in _refs(doc.data) if (new := _renamed(r, folders, path.parent)) is not None}
        text = rewrite_refs(doc.text.encode(), names).decode()
        if doc.name is not None:  # a stage name names the folder, not a repo
            text = re.sub(r"^name:.*\n", "", text, count=1, flags=re.MULTILINE)
        deps = sorted(_depends(doc, set(folders)))
        h = hashlib.sha256(text.encode())
        for dep in deps:
            h.update(f"|{dep}:{keys[dep]}".encode())
        for ident in _parent_identity(list(names.values())):
            h.update(f"|{ident}".encode())
        key = h.hexdigest()
        recipe = stages_dir / f"{doc.name or 'final'}.yaml"
        recipe.write_text(text)
        if doc.name is None:
            result = build_one(recipe, out, True)
            continue
        keys[doc.name] = key
        target = folders[doc.name]
        if (target / STAGE_KEY).is_file() and (target / STAGE_KEY).read_text().strip() == key:
            continue  # this exact stage is built
        if target.exists():
            shutil.rmtree(target)  # stale: its document or a parent changed
        build_one(recipe, target, False)
        (target / STAGE_KEY).write_text(key + "\n")
    return result
