"""The GitHub Actions matrix: the recipes to act on, in dependency waves."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from publisher.errors import RecipeError
from publisher.release.changes import Decision
from publisher.release.graph import Node, slug, waves

MAX_MATRIX_JOBS = 256  # GitHub Actions: a matrix makes at most 256 jobs per workflow run


def parents_key(nodes: dict[str, Node], names: list[str]) -> str:
    """A cache key for the parents these recipes download: their refs, sibling parents' versions."""
    refs = sorted({r for n in names for r in nodes[n].externals})
    refs += sorted({f"{p}@v{nodes[p].version}" for n in names for p in nodes[n].parents})
    return hashlib.sha256("\n".join(refs).encode()).hexdigest()[:20]


def matrix(
    nodes: dict[str, Node],
    decisions: dict[str, Decision],
    recipes_root: Path,
    *,
    max_waves: int | None = None,
    max_jobs: int = MAX_MATRIX_JOBS,
) -> dict[str, Any]:
    """The GitHub Actions matrix: the recipes to act on, grouped in dependency waves.

    ``wave<i>`` is a matrix (``{"include": [...]}``) whose jobs need only earlier waves.
    A wave of more than ``max_jobs`` recipes is packed into ``max_jobs`` entries of several
    recipes each (``names``). More than ``max_waves`` waves is an error: the workflow has a
    fixed number of wave jobs.
    """
    levels = [[n for n in wave if decisions[n].action != "skip"] for wave in waves(nodes)]
    levels = [w for w in levels if w]
    if max_waves is not None and len(levels) > max_waves:
        deepest = levels[-1][0]
        raise RecipeError(
            f"this release needs {len(levels)} dependency waves ({deepest} is in the last) "
            f"but the workflow has {max_waves} wave jobs",
            where=str(recipes_root),
            fix=f"add jobs wave{max_waves} to wave{len(levels) - 1} to .github/workflows/release.yml "
            "(each a copy of the last, needing the one before) and set MAX_WAVES there to match",
        )
    out: dict[str, Any] = {"waves": len(levels), "jobs": 0}
    for i, wave in enumerate(levels):
        packs = _pack(wave, max_jobs)
        entries: list[dict[str, str]] = []
        for pack in packs:
            first = nodes[pack[0]]
            single = len(pack) == 1
            actions = {decisions[n].action for n in pack}
            entries.append(
                {
                    "name": first.name if single else f"{first.name} and {len(pack) - 1} more",
                    "names": " ".join(pack),
                    "group": slug(first.name) if single else f"pack-{i}-{len(entries)}",
                    "recipe": rel(first.path, recipes_root) if single else "",
                    "action": "build" if "build" in actions else "card",
                    "cache_key": parents_key(nodes, pack),
                }
            )
        out[f"wave{i}"] = {"include": entries}
        out["jobs"] += len(entries)
    out["authors"] = " ".join(sorted({n.split("/")[0] for n in nodes}))
    return out


def _pack(names: list[str], max_jobs: int) -> list[list[str]]:
    if len(names) <= max_jobs:
        return [[n] for n in names]
    packs: list[list[str]] = [[] for _ in range(max_jobs)]
    for i, n in enumerate(names):
        packs[i % max_jobs].append(n)
    return packs


def rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
