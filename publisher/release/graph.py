"""The recipes of a catalog as a graph: a parent that is another recipe's ``name`` is an edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from publisher.errors import PublisherError, RecipeError
from publisher.recipe import LoadedRecipe, load_recipe, model_references
from publisher.sources import HUB_REF_RE


@dataclass
class Node:
    name: str
    path: Path
    loaded: LoadedRecipe
    parents: list[str] = field(default_factory=list)  # sibling recipes this one merges
    externals: list[str] = field(default_factory=list)  # other Hub references, as written

    @property
    def version(self) -> str:
        return self.loaded.recipe.version or ""

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    def card_inputs(self) -> set[Path]:
        """Files besides the recipe that its card is rendered from (custom template, evaluations)."""
        card = self.loaded.recipe.card
        out = set()
        if card.template:
            out.add((self.path.parent / card.template).resolve())
        if isinstance(card.evaluations, str):
            out.add((self.path.parent / card.evaluations).resolve())
        return out

    def variant_repos(self) -> list[str]:
        from publisher.quantize.schemes import get_scheme

        out = [self.name]
        for spec in self.loaded.recipe.quantize:
            try:
                out.append(f"{self.name}-{spec.suffix or get_scheme(spec.scheme).suffix}")
            except PublisherError:
                continue  # the build reports the bad scheme with its line
        return out


def load_catalog(recipes_dir: Path) -> dict[str, Node]:
    """Every recipe under ``recipes_dir`` by name, with its edges to sibling recipes."""
    recipes_dir = Path(recipes_dir)
    if not recipes_dir.is_dir():
        raise RecipeError("not a folder", where=str(recipes_dir), fix="give the folder that holds the recipes")
    nodes: dict[str, Node] = {}
    paths = sorted(p for p in recipes_dir.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not paths:
        raise RecipeError("no recipes (*.yaml) found", where=str(recipes_dir))
    for path in paths:
        loaded = load_recipe(path)
        r = loaded.recipe
        if not r.name or not r.version:
            missing = "name" if not r.name else "version"
            raise RecipeError(
                f"a released recipe needs '{missing}'",
                where=f"{path}:1",
                fix="add name: org/model and version: 1.0.0",
            )
        if r.name in nodes:
            raise RecipeError(
                f"two recipes publish {r.name}: {nodes[r.name].path} and {path}",
                where=str(path),
                fix="give each recipe its own name",
            )
        nodes[r.name] = Node(name=r.name, path=path, loaded=loaded)
    for node in nodes.values():
        for ref in model_references(node.loaded.merge):
            m = HUB_REF_RE.match(ref)
            if m is None:
                continue
            repo = m.group("repo")
            if repo in nodes and repo != node.name:
                if repo not in node.parents:
                    node.parents.append(repo)
            elif ref not in node.externals:
                node.externals.append(ref)
    return nodes


def waves(nodes: dict[str, Node]) -> list[list[str]]:
    """Kahn's levels: every recipe's parents are in earlier waves. A cycle is an error."""
    remaining = {n: set(node.parents) for n, node in nodes.items()}
    children = _children(nodes)
    out: list[list[str]] = []
    ready = sorted(n for n, deps in remaining.items() if not deps)
    while remaining:
        if not ready:
            cycle = _find_cycle(remaining)
            raise RecipeError(
                f"recipes depend on each other in a cycle: {' -> '.join(cycle)}",
                where=str(nodes[cycle[0]].path),
                fix="a recipe cannot (indirectly) merge its own output",
            )
        out.append(ready)
        nxt: set[str] = set()
        for n in ready:
            del remaining[n]
        for n in ready:
            for child in children[n]:
                deps = remaining[child]
                deps.discard(n)
                if not deps:
                    nxt.add(child)
        ready = sorted(nxt)
    return out


def _children(nodes: dict[str, Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for n, node in nodes.items():
        for p in node.parents:
            children[p].append(n)
    return children


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """Every node left has a parent left, so walking parents from any of them must loop."""
    start = sorted(graph)[0]
    path = [start]
    seen = {start: 0}
    while True:
        nxt = sorted(graph[path[-1]])[0]
        if nxt in seen:
            return [*path[seen[nxt] :], nxt]
        seen[nxt] = len(path)
        path.append(nxt)


def dependents(nodes: dict[str, Node], name: str) -> set[str]:
    """Every recipe that merges ``name``, directly or through others."""
    children = _children(nodes)
    out: set[str] = set()
    frontier = [name]
    while frontier:
        for child in children[frontier.pop()]:
            if child not in out:
                out.add(child)
                frontier.append(child)
    return out


def slug(name: str) -> str:
    return name.replace("/", "--")
