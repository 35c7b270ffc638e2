"""Lay out a lineage graph for an inline SVG, server-side (a page must not need Mermaid's CDN).

A layered drawing: the model at the bottom, each ancestor one row above its lowest child
(longest path), the order in each row improved by a few barycenter sweeps so edges cross
less. Text widths are estimated (no font metrics without a browser), generously.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from publisher.catalog.schema import LineageData, LineageNodeData

NODE_H = 58
GAP_X = 28
GAP_Y = 54
PAD = 14
MIN_W = 150
MAX_CHARS = 46
NAME_PX = 8.4  # per character, bold 13px sans (capitals and digits are wide)
SMALL_PX = 6.6  # per character, 11px sans
VIRTUAL_W = 12  # the width an edge takes in a row it passes through
ARROW_GAP = 4


@dataclass(frozen=True)
class PlacedNode:
    id: str
    x: float
    y: float
    w: float
    h: float
    name: str
    namespace: str
    detail: str
    status: str
    page: str | None
    is_root: bool
    title: str  # full text for the tooltip

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True)
class PlacedEdge:
    path: str
    upward: bool  # drawn against the flow: a cycle in the card data


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _detail(n: LineageNodeData) -> str:
    if n.status != "ok" and not n.is_root:
        return {"unknown": "ancestry unknown", "no-card": "no model card", "cycle": "cycle", "depth-limit": "not followed"}.get(
            n.status, n.status
        )
    parts = []
    if n.relation == "merge":
        parts.append(f"merge · {n.method}" if n.method else "merge")
    elif n.relation:
        parts.append(n.relation)
    if n.license:
        parts.append(n.license)
    return " · ".join(parts) or "base model"


def layers_of(data: LineageData) -> dict[str, int]:
    """Row of each node: 0 for the model, parents above children (longest path, cycle-safe)."""
    ids = [n.id for n in data.nodes]
    root = next((n.id for n in data.nodes if n.is_root), ids[0] if ids else None)
    layer = dict.fromkeys(ids, 0)
    if root is None:
        return layer
    for _ in range(len(ids)):  # Bellman-Ford style: at most |V| rounds, so cycles end
        changed = False
        for parent, child in data.edges:
            if layer[parent] < layer[child] + 1 and layer[child] + 1 < len(ids):
                layer[parent] = layer[child] + 1
                changed = True
        if not changed:
            break
    return layer


def layout(data: LineageData) -> Layout:
    if not data.nodes:
        return Layout(0, 0, [], [])
    layer = layers_of(data)
    depth = max(layer.values())
    rows: list[list[str]] = [[] for _ in range(depth + 1)]
    for n in data.nodes:  # graph() order: depth-first from the model, a stable start
        rows[layer[n.id]].append(n.id)

    # an edge over several rows passes through a narrow virtual node in each row between,
    # so it is routed around the boxes instead of through them
    chains: list[tuple[list[str], bool]] = []  # ids from parent down to child; upward?
    for k, (p, c) in enumerate(data.edges):
        upward = layer[p] <= layer[c]
        chain = [p]
        if not upward:
            for r in range(layer[p] - 1, layer[c], -1):
                vid = f"~{k}.{r}"
                rows[r].append(vid)
                chain.append(vid)
        chain.append(c)
        chains.append((chain, upward))
    parents_of: dict[str, list[str]] = {}
    children_of: dict[str, list[str]] = {}
    for chain, upward in chains:
        if upward:
            continue
        for a, b in itertools.pairwise(chain):
            parents_of.setdefault(b, []).append(a)
            children_of.setdefault(a, []).append(b)

    def sweep(neighbours: dict[str, list[str]], rng: range) -> None:
        for i in rng:
            ref = {nid: k for k, nid in enumerate(rows[i - 1 if rng.step > 0 else i + 1])}
            here = {nid: k for k, nid in enumerate(rows[i])}

            def key(nid: str, here: dict[str, int] = here, ref: dict[str, int] = ref) -> float:
                near = [ref[x] for x in neighbours.get(nid, []) if x in ref]
                return sum(near) / len(near) if near else float(here[nid])

            rows[i].sort(key=key)

    for _ in range(3):
        sweep(children_of, range(1, depth + 1))  # upwards: ancestors by their children below
        sweep(parents_of, range(depth - 1, -1, -1))  # downwards: by their parents above

    by_id = {n.id: n for n in data.nodes}
    sizes: dict[str, float] = {}
    for row in rows:
        for nid in row:
            node = by_id.get(nid)
            if node is None:
                sizes[nid] = VIRTUAL_W
                continue
            ns, _, name = node.label.rpartition("/")
            text_w = max(len(_clip(name)) * NAME_PX, len(_clip(ns)) * SMALL_PX, len(_detail(node)) * SMALL_PX)
            sizes[nid] = max(MIN_W, text_w + 2 * PAD)
    row_w = [sum(sizes[i] for i in row) + GAP_X * (len(row) - 1) for row in rows]
    width = max(row_w) + 2 * PAD
    centre: dict[str, tuple[float, float, float]] = {}  # id -> (centre x, top y, bottom y)
    placed: dict[str, PlacedNode] = {}
    for r, row in enumerate(rows):
        y = PAD + (depth - r) * (NODE_H + GAP_Y)
        x = PAD + (width - 2 * PAD - row_w[r]) / 2
        for nid in row:
            centre[nid] = (x + sizes[nid] / 2, y, y + NODE_H)
            node = by_id.get(nid)
            if node is not None:
                ns, _, name = node.label.rpartition("/")
                title = node.label + (f" — {node.note}" if node.note else "")
                placed[nid] = PlacedNode(
                    id=nid, x=round(x, 1), y=y, w=round(sizes[nid], 1), h=NODE_H,
                    name=_clip(name), namespace=_clip(ns), detail=_detail(node), status=node.status,
                    page=node.page, is_root=node.is_root, title=title,
                )
            x += sizes[nid] + GAP_X
    edges = [PlacedEdge(_path(chain, centre, upward), upward) for chain, upward in chains]
    height = PAD * 2 + (depth + 1) * NODE_H + depth * GAP_Y
    return Layout(round(width, 1), height, [placed[n.id] for n in data.nodes], edges)


def _path(chain: list[str], centre: dict[str, tuple[float, float, float]], upward: bool) -> str:
    """Vertical-tangent curves between rows, straight through each virtual node's row."""
    if upward:  # against the flow (a cycle in the card data): top of the parent to the child's bottom
        (x1, y1, _), (x2, _, y2) = centre[chain[0]], centre[chain[-1]]
        mid = (y1 + y2) / 2
        return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
    x, _, y = centre[chain[0]]
    parts = [f"M{x:.1f},{y:.1f}"]
    for i, nid in enumerate(chain[1:], start=1):
        nx, top, bottom = centre[nid]
        last = i == len(chain) - 1
        end = top - ARROW_GAP if last else top
        mid = (y + end) / 2
        parts.append(f"C{x:.1f},{mid:.1f} {nx:.1f},{mid:.1f} {nx:.1f},{end:.1f}")
        if not last:
            parts.append(f"L{nx:.1f},{bottom:.1f}")
        x, y = nx, bottom
    return " ".join(parts)
