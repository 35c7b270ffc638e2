"""What a source (a Hub endpoint or local builds) hands to the catalog for each model repo."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from publisher.card.facts import ModelFacts
from publisher.catalog.schema import Version

VERSION_TAG = re.compile(r"^v(\d[\w.+-]*)$")


class SkipRepo(Exception):
    """This repo cannot be listed; the message says why.

    ``problem``: something is wrong with it (a malformed card, unreadable weights): a warning,
    and a failure under ``--strict``. Otherwise it is simply not a catalog model (no version tag).
    """

    def __init__(self, why: str, *, problem: bool = True) -> None:
        super().__init__(why)
        self.problem = problem


@dataclass(frozen=True)
class Skipped:
    repo: str  # repo id, or the build folder
    why: str
    problem: bool

    def line(self) -> str:
        return f"{self.repo}: {self.why}"


@dataclass
class RepoRecord:
    repo_id: str
    card_text: str  # README.md, front matter included
    facts: ModelFacts
    versions: list[Version]  # newest first
    revision: str | None  # the commit the card was read at
    source: str  # endpoint URL or build folder
    extra_files: dict[str, str | None] = field(default_factory=dict)  # recipe.yaml etc., for lineage


def version_key(version: str) -> tuple[Any, ...]:
    """Numeric parts compare as numbers (1.10.0 > 1.9.0); a pre-release sorts before its release."""
    main, _, pre = version.partition("-")
    parts: list[tuple[int, Any]] = []
    for p in re.split(r"[.+]", main):
        parts.append((0, int(p)) if p.isdigit() else (1, p))
    return (tuple(parts), 1 if not pre else 0, pre)


def sort_versions(versions: list[Version]) -> list[Version]:
    return sorted(versions, key=lambda v: (version_key(v.version), v.date), reverse=True)


def recipe_card(recipe_text: str | None) -> dict[str, Any]:
    """The ``card:`` section of a published recipe.yaml, read minimally ({} when unreadable)."""
    if not recipe_text:
        return {}
    try:
        data = yaml.safe_load(recipe_text)
    except yaml.YAMLError:
        return {}
    card = data.get("card") if isinstance(data, dict) else None
    return card if isinstance(card, dict) else {}


def served_context(recipe_text: str | None) -> int | None:
    """``card.context_length`` of a published recipe.yaml: the context the card states.

    Read minimally (not validated as a whole recipe): the catalog needs only this number,
    and a recipe written by an older publisher must not make its model unlistable.
    """
    if not recipe_text:
        return None
    try:
        data = yaml.safe_load(recipe_text)
    except yaml.YAMLError:
        return None
    card = data.get("card") if isinstance(data, dict) else None
    value = card.get("context_length") if isinstance(card, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
