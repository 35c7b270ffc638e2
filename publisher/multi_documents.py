"""A catalog file's recipes: its one document, or every document of a mergekit-multi file.

A multi-document file (``publisher/multi.py``) is one recipe of the catalog: its final merge
is the recipe (its ``name``, ``version``, card), and its stages named with a repo id are
outputs of the same recipe, published before the final with the final's version unless they
have their own. Each document is loaded as ``build`` reads it (a local stage's ``name:`` is a
comment there), errors pointed at the user's file and line.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from publisher.errors import PublisherError
from publisher.multi import Document, published, relocated, split_documents
from publisher.recipe import LoadedRecipe, Recipe, load_recipe


@dataclass
class FileRecipes:
    final: LoadedRecipe
    stages: list[LoadedRecipe] = field(default_factory=list)  # every other document, in build order
    stage_repos: dict[str, str] = field(default_factory=dict)  # published stage repo id -> its version
    stage_names: set[str] = field(default_factory=set)  # every stage name (local ones name no repo)
    final_line: int = 1

    @property
    def recipes(self) -> list[Recipe]:
        """Stages first, the final last (what change detection compares)."""
        return [s.recipe for s in self.stages] + [self.final.recipe]


def document_text(doc: Document, final_version: object) -> str:
    """The document as ``build`` reads it (``multi.prepare`` without the path rewriting)."""
    text = doc.text
    if doc.name is not None and not published(doc):
        text = re.sub(r"^name:(.*)$", r"# stage name:\1", text, count=1, flags=re.MULTILINE)
    if doc.name is not None and published(doc) and "version" not in doc.data and final_version is not None:
        text += f"version: {final_version}\n"
    return text


def load_file_recipes(path: Path) -> FileRecipes:
    docs = split_documents(path)
    if docs is None:
        return FileRecipes(load_recipe(path))
    final_doc = next(d for d in docs if d.name is None)
    final_version = final_doc.data.get("version")
    loaded: dict[int, LoadedRecipe] = {}
    with tempfile.TemporaryDirectory(prefix=".release-doc-") as tmp:
        for doc in docs:
            one = Path(tmp) / f"{doc.index}.yaml"
            one.write_text(document_text(doc, final_version))
            try:
                loaded[doc.index] = load_recipe(one)
            except PublisherError as e:
                raise relocated(e, one, path, doc) from None
    stages = [d for d in docs if d.name is not None]
    return FileRecipes(
        final=loaded[final_doc.index],
        stages=[loaded[d.index] for d in stages],
        stage_repos={d.name: str(loaded[d.index].recipe.version or "") for d in stages if d.name and published(d)},
        stage_names={d.name for d in stages if d.name},
        final_line=final_doc.line,
    )
