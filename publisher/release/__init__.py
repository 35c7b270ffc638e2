"""Releases: the recipes as a graph, what changed since a git ref, and build → publish in waves.

A recipe whose parent is another recipe's ``name`` depends on it: the parent is released
first and the child merges exactly the commit the parent's version is published at (its sha
is pinned), so no child is ever built from a stale intermediate.

Change detection (gitpython, ``--changed-since REF``) decides per recipe: release it (its
weights changed: a new version, or a parent of it was rebuilt), re-render its card only (its
card text, its card template, its evaluations file, or the catalog's ``templates/card/``
changed), or skip it. A merge that changed while the version stayed is an error, because a
published tag never moves.

What is already on the Hub decides how: a version whose tag exists is never built again.
Its card is re-rendered from a header-only copy of the published build (config, tokenizer,
manifest and safetensors headers; ``publisher.hub.published``) or from the local build that
was published, and only README.md is committed when it changed. A version not yet published
is built (or its local build reused) and published whole. So a full release is idempotent,
on a laptop or on a fresh CI runner alike.
"""

from publisher.release.changes import (
    CARD_TEMPLATES,
    WEIGHT_SECTIONS,
    Action,
    Decision,
    decide,
    default_templates_dir,
    removed_recipes,
)
from publisher.release.graph import Node, dependents, load_catalog, slug, waves
from publisher.release.matrix import MAX_MATRIX_JOBS, matrix, parents_key
from publisher.release.run import ReleaseOptions, Row, build_dir_for, run_release

__all__ = [
    "CARD_TEMPLATES",
    "MAX_MATRIX_JOBS",
    "WEIGHT_SECTIONS",
    "Action",
    "Decision",
    "Node",
    "ReleaseOptions",
    "Row",
    "build_dir_for",
    "decide",
    "default_templates_dir",
    "dependents",
    "load_catalog",
    "matrix",
    "parents_key",
    "removed_recipes",
    "run_release",
    "slug",
    "waves",
]
