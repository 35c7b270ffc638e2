"""The recipes of a catalog as a graph: a parent that is another recipe's ``name`` is an edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from publisher.errors import PublisherError, RecipeError
from publisher.multi_documents import FileRecipes, load_file_recipes
from publisher.recipe import LoadedRecipe, Recipe, model_references
from publisher.sources import HUB_REF_RE


@dataclass
class Node:
    name: str
    path: Path
    loaded: LoadedRecipe  # the final merge (the file's only document, or a multi file's last)
    parents: list[str] = field(default_factory=list)  # sibling recipes this one merges
    externals: list[str] = field(default_factory=list)  # other Hub references, as written
    parent_repos: list[str] = field(default_factory=list)  # the sibling repos merged (a stage repo, or a recipe's)
    file: FileRecipes | None = None  # a multi-document file's documents

    @property
    def recipes(self) -> list[Recipe]:
        """Every document's recipe, the final last (one for an ordinary file)."""
        return self.file.recipes if self.file is not None else [self.loaded.recipe]

    @property
    def is_multi(self) -> bool:
        return self.file is not None and bool(self.file.stages)

    def repo_tags(self) -> dict[str, str]:
        """The repos this recipe publishes (stages first, then the final) and the tag of each."""
        out = {repo: f"v{version}" for repo, version in (self.file.stage_repos.items() if self.file else ())}
        out[self.name] = self.tag
        return out

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
        """Every repo a release of this recipe writes: published stages' first, then its own."""
        out: list[str] = []
        stages = [s.recipe for s in self.file.stages if s.recipe.name in self.file.stage_repos] if self.file else []
        for recipe in [*stages, self.loaded.recipe]:
            out += _variant_repos(recipe)
        return out


def _variant_repos(recipe: Recipe) -> list[str]:
    from publisher.quantize.schemes import get_scheme

    assert recipe.name is not None
    out = [recipe.name]
    for spec in recipe.quantize:
        try:
            out.append(f"{recipe.name}-{spec.suffix or get_scheme(spec.scheme).suffix}")
        except PublisherError:
            continue  # the build reports the bad scheme with its line
    return out


def load_catalog(recipes_dir: Path) -> dict[str, Node]:
    """Every recipe under ``recipes_dir`` by name, with its edges to sibling recipes."""
    recipes_dir = Path(recipes_dir)
    if not recipes_dir.is_dir():
        raise RecipeError("not a folder", where=str(recipes_dir), fix="give the folder that holds the recipes")
    nodes: dict[str, Node] = {}
    owners: dict[str, str] = {}  # every repo a recipe publishes (its stages' too) -> the recipe
    paths = sorted(p for p in recipes_dir.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if not paths:
        raise RecipeError("no recipes (*.yaml) found", where=str(recipes_dir))
    for path in paths:
        file = load_file_recipes(path)
        loaded = file.final
        r = loaded.recipe
        if not r.name or not r.version:
            missing = "name" if not r.name else "version"
            raise RecipeError(
                f"a released recipe needs '{missing}'" + (" (the final merge of a multi-document file)" if file.stages else ""),
                where=f"{path}:{file.final_line}",
                fix="add name: org/model and version: 1.0.0",
            )
        for repo in [*file.stage_repos, r.name]:
            if repo in owners:
                raise RecipeError(
                    f"two recipes publish {repo}: {nodes[owners[repo]].path} and {path}",
                    where=str(path),
                    fix="give each recipe its own name",
                )
            owners[repo] = r.name
        nodes[r.name] = Node(name=r.name, path=path, loaded=loaded, file=file if file.stages else None)
    for node in nodes.values():
        own = set(node.file.stage_names) if node.file else set()
        for recipe in [*node.file.stages, node.loaded] if node.file else [node.loaded]:
            _edges(node, recipe, owners, own)
    return nodes


def _edges(node: Node, loaded: LoadedRecipe, owners: dict[str, str], own: set[str]) -> None:
    for ref in model_references(loaded.merge):
        m = HUB_REF_RE.match(ref)
        if m is None:
            continue
        repo = m.group("repo")
        if repo in own:
            continue  # a stage of the same file: built with it
        owner = owners.get(repo)
        if owner is not None and owner != node.name:
            if owner not in node.parents:
                node.parents.append(owner)
            if repo not in node.parent_repos:
                node.parent_repos.append(repo)
        elif owner is None and ref not in node.externals:
            node.externals.append(ref)


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
