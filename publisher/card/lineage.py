"""The family tree of a built model, and the license check over all of it.

Direct parents come from the build's manifest (exactly what was read, with revisions).
Their ancestors come from each parent's own card front matter (``base_model``,
``base_model_relation``, ``license``, ``tags``), read from a sibling recipe in the same
catalog, from the README.md of a local folder, or through huggingface_hub from
``HF_ENDPOINT`` (hf_hub_download, so the Hub cache serves repeated reads), recursively
with a depth limit and cycle detection. Nothing is guessed: a parent whose card cannot be
read is *unknown*, and every such gap becomes a warning (``--strict`` turns warnings into
a failure). Reading cards is ``fetchers`` + ``origin``; the license check over the tree is
``license_check``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from publisher.card.fetchers import CardFetcher, FetchError, FolderFetcher, HubFetcher
from publisher.card.origin import CardInfo, SiblingRecipes, parse_card
from publisher.recipe import REPO_ID_RE

Status = Literal["ok", "unknown", "no-card", "cycle", "depth-limit"]
Source = Literal["build", "recipe", "local", "hub", "none"]
DEFAULT_MAX_DEPTH = 8
NO_CARD = "the repo has no model card"
NO_README = "no README.md in the folder"
# re-exported: older callers import these from here
__all__ = [
    "DEFAULT_MAX_DEPTH", "CardFetcher", "CardInfo", "FetchError", "FolderFetcher", "HubFetcher",
    "Lineage", "LineageNode", "LineageResolver", "SiblingRecipes", "parse_card",
]


@dataclass
class LineageNode:
    ref: str  # as written: a repo id, or a local path
    repo_id: str | None
    revision: str | None
    source: Source
    status: Status
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    relation: str | None = None  # how this model derives from its parents
    method: str | None = None  # merge method, when a merge
    parents: list[LineageNode] = field(default_factory=list)
    note: str | None = None  # why the node is not fully known
    is_root: bool = False

    @property
    def label(self) -> str:
        return self.repo_id or self.ref

    @property
    def key(self) -> str:
        return (self.repo_id or self.ref).casefold()

    @property
    def known(self) -> bool:
        return self.status == "ok"


@dataclass
class Lineage:
    root: LineageNode
    warnings: list[str]

    def walk(self) -> Iterator[tuple[list[LineageNode], LineageNode]]:
        """(path from the root, node) for every node below the root, depth first."""

        def rec(path: list[LineageNode], node: LineageNode) -> Iterator[tuple[list[LineageNode], LineageNode]]:
            for p in node.parents:
                yield [*path, p], p
                yield from rec([*path, p], p)

        yield from rec([self.root], self.root)

    def rows(self) -> list[tuple[int, LineageNode, bool]]:
        """(depth, node, repeated) in display order; a subtree seen before is not repeated."""
        out: list[tuple[int, LineageNode, bool]] = []
        seen: set[str] = set()

        def rec(node: LineageNode, depth: int) -> None:
            repeated = node.key in seen and bool(node.parents)
            out.append((depth, node, repeated))
            seen.add(node.key)
            if not repeated:
                for p in node.parents:
                    rec(p, depth + 1)

        rec(self.root, 0)
        return out

    def graph(self) -> tuple[list[tuple[str, LineageNode]], list[tuple[str, str, str]]]:
        """Distinct nodes with stable ids (n0, n1, ...) and (parent id, child id, edge label)."""
        ids: dict[str, str] = {}
        nodes: list[tuple[str, LineageNode]] = []
        edges: list[tuple[str, str, str]] = []

        def node_id(n: LineageNode) -> str:
            if n.key not in ids:
                ids[n.key] = f"n{len(ids)}"
                nodes.append((ids[n.key], n))
            return ids[n.key]

        def rec(n: LineageNode) -> None:
            child = node_id(n)
            for p in n.parents:
                pid = node_id(p)
                edge = (pid, child, n.method or n.relation or "")
                if edge not in edges:
                    edges.append(edge)
                rec(p)

        rec(self.root)
        return nodes, edges


class LineageResolver:
    """Resolves parents into a tree; reads each distinct card once."""

    def __init__(
        self,
        *,
        fetcher: CardFetcher | None,
        siblings: SiblingRecipes,
        max_depth: int = DEFAULT_MAX_DEPTH,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.on_warning = warn
        self.fetcher = fetcher
        self.siblings = siblings
        self.max_depth = max_depth
        self.warnings: list[str] = []
        self._cache: dict[tuple[str, str | None], tuple[Source, CardInfo | None, str | None]] = {}

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            if self.on_warning is not None:
                self.on_warning(text)

    def _info(self, repo_id: str | None, revision: str | None, local: Path | None) -> tuple[Source, CardInfo | None, str | None]:
        """(source, info or None, why unknown)."""
        key = (str(local) if local else (repo_id or "").casefold(), revision)
        if key in self._cache:
            return self._cache[key]
        result: tuple[Source, CardInfo | None, str | None]
        sib = self.siblings.get(repo_id) if repo_id else None
        if sib is not None:
            result = ("recipe", sib, None)
        elif local is not None:
            readme = local / "README.md"
            if readme.is_file():
                extra = _local_reader(local)
                result = ("local", parse_card(readme.read_text(encoding="utf-8-sig"), extra), None)
            else:
                result = ("local", None, NO_README)
        elif repo_id is not None and self.fetcher is not None:
            fetcher = self.fetcher
            try:
                text = fetcher.read(repo_id, "README.md", revision)
            except FetchError as e:
                result = ("hub", None, str(e))
            else:
                if text is None:
                    result = ("hub", None, NO_CARD)
                else:
                    def extra(fname: str) -> str | None:
                        try:
                            return fetcher.read(repo_id, fname, revision)
                        except FetchError:
                            return None

                    result = ("hub", parse_card(text, extra), None)
        elif repo_id is not None:
            result = ("none", None, "no Hub access configured")
        else:
            result = ("none", None, "not a repo id")
        self._cache[key] = result
        return result

    def node(
        self,
        ref: str,
        *,
        repo_id: str | None,
        revision: str | None = None,
        local: Path | None = None,
        path: list[str],
        depth: int,
    ) -> LineageNode:
        label = repo_id or ref
        node = LineageNode(ref=ref, repo_id=repo_id, revision=revision, source="none", status="ok")
        chain = " → ".join([*path, label])
        if node.key in {p.casefold() for p in path}:
            node.status, node.note = "cycle", "cycle: already an ancestor on this path"
            self._warn(f"lineage cycle: {chain}")
            return node
        if depth > self.max_depth:
            node.status, node.note = "depth-limit", f"not followed beyond depth {self.max_depth}"
            self._warn(f"lineage of {label} not followed beyond depth {self.max_depth} (path {chain})")
            return node
        source, info, why = self._info(repo_id, revision, local)
        node.source = source
        if info is None:
            node.status = "no-card" if why in (NO_CARD, NO_README) else "unknown"
            node.note = why
            self._warn(f"ancestry of {label} is unknown: {why}")
            return node
        for n in info.notes:
            self._warn(f"{label}: {n}")
        node.license, node.license_name, node.license_link = info.license, info.license_name, info.license_link
        node.relation, node.method = info.relation, info.method
        for parent in info.parents:
            if REPO_ID_RE.match(parent):
                node.parents.append(self.node(parent, repo_id=parent, path=[*path, label], depth=depth + 1))
            else:
                bad = LineageNode(ref=parent, repo_id=None, revision=None, source="none", status="unknown",
                                  note="base_model is not a Hub repo id")
                self._warn(f"{label} names base_model {parent!r}, which is not a repo id; shown as unknown")
                node.parents.append(bad)
        return node


def _local_reader(folder: Path) -> Callable[[str], str | None]:
    def read(fname: str) -> str | None:
        p = folder / fname
        return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None

    return read
