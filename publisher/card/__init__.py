"""Model cards: facts read from the output, lineage and licenses over the ancestry, Jinja2 rendering.

The entry points other stages call:

- ``render_cards(build_dir, ...)``: (re)render README.md of every variant of a build (``publisher
  build`` calls it at the end; ``publisher card`` is its command).
- ``validate_card_text(text, where)``: the offline check a publisher runs before uploading a card.
- ``model_facts(folder, context_length=...)`` + ``strip_of(facts, license=..., published=...)``:
  the catalog strip of any model folder, as data; ``build_strips(build_dir)`` for a build.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CardsResult": "publisher.card.render",
    "RenderedCard": "publisher.card.render",
    "build_strips": "publisher.card.render",
    "render_cards": "publisher.card.render",
    "validate_card_text": "publisher.card.validate",
    "ModelFacts": "publisher.card.facts",
    "Strip": "publisher.card.facts",
    "model_facts": "publisher.card.facts",
    "strip_of": "publisher.card.facts",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Lazy: ``publisher.card.licenses`` alone (the local Hub's validate-yaml) must stay light."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
