"""What a model's own card (or a sibling recipe) says about its origin.

``parse_card`` reads a card's front matter (``base_model``, ``base_model_relation``,
``license``, ``tags``) through huggingface_hub's ModelCard, falling back on the mergekit
configuration a merge's card body or repo carries. ``SiblingRecipes`` gives the same facts
for the recipes of one catalog, which are known before anything is published.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from publisher.errors import PublisherError
from publisher.merge.methods import REGISTRY
from publisher.multi_documents import load_file_recipes
from publisher.recipe import LoadedRecipe, model_references

RELATIONS = ("merge", "quantized", "finetune", "adapter")
# mergekit's method names, so a parent's card tag or config can name a method we do not implement.
MERGEKIT_METHODS = frozenset(
    {
        "linear", "slerp", "nuslerp", "multislerp", "karcher", "task_arithmetic", "ties", "dare_ties",
        "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear", "model_stock",
        "passthrough", "nearswap", "arcee_fusion", "sce", "core_space",
    }
)
_YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.M | re.S)


@dataclass
class CardInfo:
    """What a card (or a recipe) says about a model's own origin."""

    parents: list[str]
    relation: str | None
    method: str | None
    license: str | None
    license_name: str | None = None
    license_link: str | None = None
    notes: list[str] = field(default_factory=list)


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []


def _method_from_config(data: Any) -> tuple[str | None, list[str]]:
    """merge_method and model references of a mergekit config or one of our recipes."""
    if not isinstance(data, dict):
        return None, []
    if isinstance(data.get("merge"), dict):
        data = data["merge"]
    method = data.get("merge_method")
    refs: list[str] = []
    if isinstance(data.get("base_model"), str):
        refs.append(data["base_model"])
    for m in data.get("models") or []:
        if isinstance(m, dict) and isinstance(m.get("model"), str):
            refs.append(m["model"])
    for s in data.get("slices") or []:
        for src in (s.get("sources") or []) if isinstance(s, dict) else []:
            if isinstance(src, dict) and isinstance(src.get("model"), str):
                refs.append(src["model"])
    return (method if isinstance(method, str) else None), list(dict.fromkeys(refs))


def parse_card(text: str, read_extra: Callable[[str], str | None] | None = None) -> CardInfo:
    """Origin facts from a model card (front matter through huggingface_hub's ModelCard)."""
    from huggingface_hub import ModelCard

    notes: list[str] = []
    try:
        card = ModelCard(text, ignore_metadata_errors=True)
        data = card.data.to_dict()
        body = card.text
    except (ValueError, yaml.YAMLError) as e:
        notes.append(f"unreadable front matter ({' '.join(str(e).split())[:120]})")
        data, body = {}, text
    parents = _str_list(data.get("base_model"))
    tags = [t.replace("-", "_").casefold() for t in _str_list(data.get("tags"))]
    relation = data.get("base_model_relation") if data.get("base_model_relation") in RELATIONS else None
    method = next((t for t in tags if t in MERGEKIT_METHODS or t in REGISTRY), None)
    if relation == "merge" or len(parents) > 1 or "merge" in tags or "mergekit" in tags:
        if method is None or not parents:
            # mergekit writes its configuration into the card body and the repo; both are data
            m: str | None = None
            refs: list[str] = []
            for block in _YAML_BLOCK.findall(body):
                try:
                    m, refs = _method_from_config(yaml.safe_load(block))
                except yaml.YAMLError:
                    continue
                if m:
                    break
            if m is None and read_extra is not None:
                for fname in ("mergekit_config.yml", "recipe.yaml"):
                    extra = read_extra(fname)
                    if extra is None:
                        continue
                    try:
                        m, refs = _method_from_config(yaml.safe_load(extra))
                    except yaml.YAMLError:
                        continue
                    if m:
                        break
            method = method or m
            if not parents:
                parents = refs
        if relation is None and (len(parents) > 1 or method):
            relation = "merge"
    lic = data.get("license")
    return CardInfo(
        parents=parents,
        relation=relation,
        method=method,
        license=lic if isinstance(lic, str) else None,
        license_name=data.get("license_name") if isinstance(data.get("license_name"), str) else None,
        license_link=data.get("license_link") if isinstance(data.get("license_link"), str) else None,
        notes=notes,
    )


class SiblingRecipes:
    """The recipes of the same catalog, by the repo they publish to."""

    def __init__(self, recipes_dir: Path | None, warn: Callable[[str], None]) -> None:
        self.by_name: dict[str, CardInfo] = {}
        self.paths: dict[str, Path] = {}
        self.by_sha: dict[str, Path] = {}
        if recipes_dir is None:
            return
        for path in sorted(p for p in Path(recipes_dir).rglob("*.y*ml") if p.suffix in (".yaml", ".yml")):
            try:
                file = load_file_recipes(path)  # a mergekit-multi file: its stages too
            except PublisherError as e:
                warn(f"sibling recipe skipped: {e}")
                continue
            for loaded in [*file.stages, file.final]:
                self._add(loaded, path)

    def _add(self, loaded: LoadedRecipe, path: Path) -> None:
        r = loaded.recipe
        self.by_sha[loaded.sha256] = path
        if r.name is None:
            return
        self.by_name[r.name.casefold()] = CardInfo(
            parents=model_references(r.merge),
            relation="merge",
            method=r.merge.merge_method,
            license=r.card.license,
            license_name=r.card.license_name,
            license_link=r.card.license_link,
        )
        self.paths[r.name.casefold()] = path

    def get(self, repo_id: str) -> CardInfo | None:
        return self.by_name.get(repo_id.casefold())
