"""A card's identity: what it says, apart from the date it shows.

A card rendered from the same inputs (facts, lineage, recipe, template, tool) on another day
differs only in its date, and so does a card whose release gate measured the same numbers on
another day (the card states the day it measured; checks.json's time is not compared either).
Its identity is the sha256 of the card rendered with a fixed date for both (the measured
numbers, text sha256, tokens, device and tool version stay in it: a changed number is a change);
it is written into the card as a one-line HTML comment (invisible on the Hub), so the
publisher can tell "the same card, rendered later" (nothing to publish) from a changed card
(a card-only commit) without rendering anything itself.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

FIXED_DATE = date(2000, 1, 1)  # the date every identity rendering shows
_MARK = "<!-- publisher card identity: sha256 {} -->"
_MARK_RE = re.compile(r"<!-- publisher card identity: sha256 ([0-9a-f]{64}) -->\n?\Z")


def identity_of(text_at_fixed_date: str) -> str:
    return hashlib.sha256(text_at_fixed_date.encode("utf-8")).hexdigest()


def stamp(text: str, identity: str) -> str:
    """``text`` ending with its identity mark (one line, after the body)."""
    body = unstamp(text)
    if not body.endswith("\n"):
        body += "\n"
    return f"{body}\n{_MARK.format(identity)}\n"


def unstamp(text: str) -> str:
    m = _MARK_RE.search(text)
    return text[: m.start()].rstrip("\n") + "\n" if m else text


def card_identity(text: str) -> str | None:
    """The identity written in a card, or None (a card not rendered by this tool)."""
    m = _MARK_RE.search(text)
    return m.group(1) if m else None
