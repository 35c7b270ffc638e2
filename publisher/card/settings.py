"""How the cards of a build were last rendered, so they can be rendered again the same way.

A quantized variant's card pins the commit of the merged model it was quantized from; that
commit exists only once the merged repo is published. ``publish`` (and so ``release``) then
records it in the variant's manifest and re-renders the cards with the settings of the last
``publisher card`` / build / release rendering (template, catalog recipes, where parents'
cards were read, the date): the same card, now pinned. Settings live in ``build.json``
(this machine's, never published); the token is never recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from publisher.manifest import BuildRecord, load_build_record, write_build_record


class CardSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    strict: bool = False
    template: str | None = None
    recipes_dir: str | None = None
    recipe_dir: str | None = None
    templates_dir: str | None = None
    published: date | None = None
    endpoint: str | None = None
    cache_dir: str | None = None
    cards_dir: str | None = None  # parents' cards from a folder laid out like the Hub (--cards)
    max_depth: int | None = None
    link_base: str | None = None


def remember(build_dir: Path, settings: CardSettings) -> None:
    record = load_build_record(build_dir) or BuildRecord()
    write_build_record(build_dir, record.model_copy(update={"card_settings": settings.model_dump(mode="json")}))


def rendered_here(build_dir: Path) -> bool:
    """Whether publisher rendered these cards (and recorded how): only such cards are re-rendered."""
    record = load_build_record(build_dir)
    return record is not None and bool(record.card_settings)


def rerender(build_dir: Path, warn: Callable[[str], None] | None = None) -> None:
    """Render the cards of ``build_dir`` again with the settings they were last rendered with."""
    from publisher.card.fetchers import FolderFetcher
    from publisher.card.render import render_cards

    record = load_build_record(build_dir)
    s = CardSettings.model_validate(record.card_settings if record else {})
    kwargs: dict[str, Any] = {
        "strict": s.strict,
        "template": Path(s.template) if s.template else None,
        "recipes_dir": Path(s.recipes_dir) if s.recipes_dir else None,
        "recipe_dir": Path(s.recipe_dir) if s.recipe_dir else None,
        "templates_dir": Path(s.templates_dir) if s.templates_dir else None,
        "published": s.published,
        "endpoint": s.endpoint,
        "cache_dir": Path(s.cache_dir) if s.cache_dir else None,
        "fetcher": FolderFetcher(Path(s.cards_dir)) if s.cards_dir else None,
        "warn": warn,
    }
    if s.max_depth is not None:
        kwargs["max_depth"] = s.max_depth
    if s.link_base is not None:
        kwargs["link_base"] = s.link_base
    render_cards(build_dir, **kwargs)
