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

A stage whose ``name:`` is a repo id (``org/stage``; mergekit-multi's own names such as
``stage-1`` are not) is to be published as its own repo: it keeps its name (and the final's
``version:`` unless it has one), and the documents after it read its folder as a sibling
recipe's output under that repo id, so ``publish`` publishes it first and pins them to its
commit (``publisher/hub/stages.py``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import PublisherError, RecipeError
from publisher.portable import rewrite_refs
from publisher.references import REPO_ID_RE, ModelPath, ModelRef, parse_reference
from publisher.sources import local_candidate

STAGE_KEY = "stage.key"
FINAL_KEY = "final.key"  # in <out>.stages/: the content key the final merge in <out> was built with
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
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None  # reported with its reason by the ordinary loader
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


def published(doc: Document) -> bool:
    """A stage named with a repo id (``name: org/stage``) is published as its own repo."""
    return doc.name is not None and REPO_ID_RE.match(doc.name) is not None


def stage_folder(stages_dir: Path, name: str) -> Path:
    return stages_dir / name.replace("/", "--")


@dataclass
class Stage:
    """A document ready to build or plan: its recipe text, content key and where it goes."""

    doc: Document
    text: str
    key: str
    recipe_outputs: dict[str, Path]  # published stages it reads: repo id -> their build folder

    @property
    def label(self) -> str:
        return self.doc.name or "final"


def prepare(path: Path, docs: list[Document], stages_dir: Path) -> list[Stage]:
    """Every document in dependency order, its references to stages and relative folders made
    absolute (a published stage stays named by its repo id and is read from its folder),
    its line numbers unchanged (a stage's ``name:`` line becomes a comment)."""
    folders = {d.name: stage_folder(stages_dir, d.name) for d in docs if d.name}
    public = {d.name for d in docs if d.name and published(d)}
    final_version = next((d.data.get("version") for d in docs if d.name is None), None)
    local = {n: f for n, f in folders.items() if n not in public}
    keys: dict[str, str] = {}
    out: list[Stage] = []
    for doc in _order(docs, path):
        names = {r: new for r in _refs(doc.data) if (new := _renamed(r, local, path.parent)) is not None}
        text = rewrite_refs(doc.text.encode(), names).decode()
        if doc.name is not None and doc.name not in public:  # a stage name names the folder, not a repo
            text = re.sub(r"^name:(.*)$", r"# stage name:\1", text, count=1, flags=re.MULTILINE)
        if doc.name in public and "version" not in doc.data and final_version is not None:
            text += f"version: {final_version}\n"  # released with the final merge
        deps = sorted(_depends(doc, set(folders)))
        h = hashlib.sha256(text.encode())
        for dep in deps:
            h.update(f"|{dep}:{keys[dep]}".encode())
        stage_paths = {str(f) for f in folders.values()}
        parents = [new for new in names.values() if str(parse_reference(new).model.path) not in stage_paths]
        for ident in _parent_identity(parents):  # stages count by their keys, not their files
            h.update(f"|{ident}".encode())
        key = h.hexdigest()
        keys[doc.name or ""] = key
        out.append(Stage(doc, text, key, {d: folders[d] for d in deps if d in public}))
    return out


def relocated(err: PublisherError, recipe: Path, path: Path, doc: Document) -> PublisherError:
    """An error about a stage's recipe file, pointed at the user's file and line instead."""
    if err.where:
        err.where = relocate(err.where, recipe, path, doc)
        err.args = (err.line(),)
    return err


def relocate(text: str, recipe: Path, path: Path, doc: Document) -> str:
    return re.sub(
        re.escape(str(recipe)) + r"(?::(\d+))?",
        lambda m: f"{path}:{int(m.group(1)) + doc.line - 1}" if m.group(1) else f"{path}:{doc.line}",
        text,
    )


def build_multi(path: Path, out: Path, docs: list[Document], build_one: Any) -> Any:
    """Build every stage (cached by content key), then the final merge into ``out``.

    ``build_one(recipe, out, final, recipe_outputs)`` builds one document."""
    out = Path(out).absolute()
    stages_dir = out.parent / f"{out.name}.stages"
    stages_dir.mkdir(parents=True, exist_ok=True)
    result = None
    for stage in prepare(path, docs, stages_dir):
        recipe = stages_dir / f"{stage.label.replace('/', '--')}.yaml"
        recipe.write_text(stage.text)
        target = out if stage.doc.name is None else stage_folder(stages_dir, stage.label)
        marker = (stages_dir / FINAL_KEY) if stage.doc.name is None else (target / STAGE_KEY)
        fresh = marker.is_file() and marker.read_text().strip() == stage.key
        if stage.doc.name is not None and fresh:
            continue  # this exact stage is built
        # stale (its document, a stage it reads or a parent changed): a stage folder is ours; the
        # final folder only when this file's final merge was built there (its key is on record)
        if target.exists() and not fresh and (stage.doc.name is not None or marker.is_file()):
            shutil.rmtree(target)
        marker.unlink(missing_ok=True)
        try:
            built = build_one(recipe, target, stage.doc.name is None, stage.recipe_outputs)
        except PublisherError as e:
            raise relocated(e, recipe, path, stage.doc) from None
        marker.write_text(stage.key + "\n")
        if stage.doc.name is None:
            result = built
    return result
