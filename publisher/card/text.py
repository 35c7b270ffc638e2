"""Putting untrusted text (recipe fields, parents' card data) into Markdown without letting it act.

Every ``{{ value }}`` a card template prints goes through ``md_inline`` unless a filter has
already made it ``Markup`` (trusted output of the filters below): newlines collapse (a field
cannot start a heading, list, table row or front matter on a line of its own), Markdown
punctuation is backslash-escaped, HTML is entity-escaped. The front matter never sees this
text: it is YAML-dumped by huggingface_hub.
"""

from __future__ import annotations

import json
import re

from markupsafe import Markup

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]{}|~$])")
_LEADING_MARKER = re.compile(r"^[#+=-]")  # heading, bullet, thematic break, setext underline
_LEADING_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9 _./:@+()-]")


def md_inline(value: object) -> str:
    """One line of inert Markdown text."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    if _LEADING_MARKER.match(text):
        text = "\\" + text
    text = _LEADING_ORDERED.sub(r"\1\\\2", text)
    return text


def md_paragraphs(value: object) -> Markup:
    """Several paragraphs (split on blank lines), each one escaped line."""
    paras = [p for p in re.split(r"\n\s*\n", str(value)) if p.strip()]
    return Markup("\n\n".join(md_inline(p) for p in paras))


def md_code(value: object) -> Markup:
    """An inline code span that no content can close early."""
    text = " ".join(str(value).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return Markup(f"{fence}{pad}{text}{pad}{fence}")


def md_fenced(value: object, lang: str = "") -> Markup:
    """A fenced code block whose fence is longer than any backtick run in the content."""
    text = str(value).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    lang = re.sub(r"[^A-Za-z0-9_+-]", "", lang)
    return Markup(f"{fence}{lang}\n{text}\n{fence}")


def md_cell(value: object) -> str:
    """A table cell: inline-escaped (``|`` included); never empty, so rows keep their shape."""
    text = md_inline(value)
    return text or " "


def py_str(value: object) -> Markup:
    """A Python (and JSON) string literal, for code samples."""
    return Markup(json.dumps(str(value)))


def mermaid_label(value: object) -> Markup:
    """A quoted Mermaid node/edge label with anything that could end it replaced."""
    text = _MERMAID_UNSAFE.sub("_", " ".join(str(value).split()))[:120]
    return Markup(f'"{text}"')


def finalize(value: object) -> object:
    """Jinja ``finalize``: escape every printed value unless it is already Markup.

    The environment runs with autoescape on, so macro output and the filters' results are
    Markup and pass through; any other string is made inert Markdown here.
    """
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("—")
    if isinstance(value, bool | int | float):
        return value
    return Markup(md_inline(value))
