"""A model card's Markdown as inert HTML for the catalog page (markdown-it-py).

Cards come from the Hub, so they are untrusted: no raw HTML reaches the page. HTML in a
card is parsed (so it can be recognised) but rendered as escaped text, except a short list
of attribute-less formatting tags that cannot run code or load anything (``<details>``,
``<summary>``, ``<br>``, ``<b>``...), emitted balanced so a card cannot close the page's
own elements. Images are never loaded (a page must not touch the network when viewed):
they become links. Unsafe link schemes (``javascript:`` ...) are refused by markdown-it.
A ``mermaid`` block is shown as its source: the page draws the lineage itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = frozenset({"details", "summary", "b", "i", "em", "strong", "code", "kbd", "sub", "sup", "br", "p", "small"})
VOID_TAGS = frozenset({"br"})
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)\s*(/?)>")
_ANY_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^>]*>", re.S)
SUMMARY_CHARS = 400


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


class _SafeRenderer(RendererHTML):
    """markdown-it's HTML renderer with the rules above."""

    def renderInline(self, tokens: Sequence[Token], options: OptionsDict, env: EnvType) -> str:
        """Tags a paragraph (or cell, heading) opens are closed at its end."""
        stack: list[str] = env.setdefault("open_tags", [])
        depth = len(stack)
        out = str(super().renderInline(tokens, options, env))
        while len(stack) > depth:
            out += f"</{stack.pop()}>"
        return out

    def html_block(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        return _allowlisted(tokens[idx].content, env)

    def html_inline(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        return _allowlisted(tokens[idx].content, env)

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = self.renderInlineAsText(token.children or [], options, env) or "image"
        if not src or src.startswith("data:"):
            return f'<span class="image-ref">[image: {_escape(alt)}]</span>'
        return f'<a class="image-ref" href="{_escape(src)}" rel="noopener noreferrer">[image: {_escape(alt)}]</a>'

    def fence(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        lang = token.info.strip().split(" ")[0] if token.info else ""
        code = _escape(token.content)
        if lang == "mermaid":
            return (
                '<details class="mermaid-source"><summary>Mermaid source of the lineage graph '
                "(drawn above as a picture)</summary>"
                f"<pre><code>{code}</code></pre></details>\n"
            )
        cls = f' class="language-{_escape(lang)}"' if lang else ""
        return f"<pre><code{cls}>{code}</code></pre>\n"

    def link_open(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)


def _allowlisted(raw: str, env: EnvType) -> str:
    """Escape everything but attribute-less allowed tags, kept balanced across the document."""
    stack: list[str] = env.setdefault("open_tags", [])
    out: list[str] = []
    pos = 0
    for m in _ANY_TAG.finditer(raw):
        out.append(_escape(raw[pos : m.start()]))
        pos = m.end()
        tag = _TAG.fullmatch(m.group(0))
        name = tag.group(2).lower() if tag else ""
        if tag is None or name not in ALLOWED_TAGS:
            out.append(_escape(m.group(0)))
        elif name in VOID_TAGS:
            out.append(f"<{name}>")
        elif tag.group(1):  # a closing tag: only of an element the card opened
            if name in stack:
                while stack:
                    top = stack.pop()
                    out.append(f"</{top}>")
                    if top == name:
                        break
            else:
                out.append(_escape(m.group(0)))
        elif tag.group(3):  # <b/>: not an element
            out.append(_escape(m.group(0)))
        else:
            stack.append(name)
            out.append(f"<{name}>")
    out.append(_escape(raw[pos:]))
    return "".join(out)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}, renderer_cls=_SafeRenderer)
    md.enable(["table", "strikethrough"])
    return md


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def render_card(
    body: str,
    *,
    title: str | None = None,
    drop_strip: bool = False,
    drop_sections: Sequence[str] = (),
    drop_summary: str | None = None,
) -> str:
    """The card body as HTML; the first ``# title`` is dropped (the page has it) and headings
    move one level down (the page's own heading is the only ``h1``).

    ``drop_strip``: leave out a table right below the title (the card's strip, which the page
    shows as its own); ``drop_sections``: ``##`` sections (by title) the page shows itself;
    ``drop_summary``: the first paragraph when it is this summary (the page shows it).
    """
    md = _parser()
    env: dict[str, Any] = {}
    tokens = md.parse(body, env)
    if (
        title is not None
        and len(tokens) >= 3
        and tokens[0].type == "heading_open"
        and tokens[0].tag == "h1"
        and _inline_text(tokens[1]).casefold() == title.casefold()
    ):
        tokens = tokens[3:]
        if drop_strip and tokens and tokens[0].type == "table_open":
            end = next((i for i, t in enumerate(tokens) if t.type == "table_close"), len(tokens) - 1)
            tokens = tokens[end + 1:]
        if drop_summary and len(tokens) >= 3 and tokens[0].type == "paragraph_open":
            text = _inline_text(tokens[1])
            if text and (text == drop_summary or text.startswith(drop_summary.rstrip("…"))):
                tokens = tokens[3:]
    if drop_sections:
        tokens = _without_sections(tokens, {s.casefold() for s in drop_sections})
    for t in tokens:
        if t.type in ("heading_open", "heading_close"):
            level = min(6, int(t.tag[1]) + 1)
            t.tag = f"h{level}"
    out = md.renderer.render(tokens, md.options, env)
    for name in reversed(env.get("open_tags", [])):
        out += f"</{name}>"
    return str(out)


def _without_sections(tokens: list[Token], titles: set[str]) -> list[Token]:
    """Drop each ``##`` section whose title is in ``titles``, up to the next ``#``/``##`` heading."""
    out: list[Token] = []
    skipping = False
    for i, t in enumerate(tokens):
        if t.type == "heading_open" and t.tag in ("h1", "h2") and t.level == 0:
            skipping = t.tag == "h2" and i + 1 < len(tokens) and _inline_text(tokens[i + 1]).casefold() in titles
        if not skipping:
            out.append(t)
    return out


def first_paragraph(body: str) -> str:
    """The card's first top-level paragraph as plain text: the one-line summary of a row."""
    tokens = _parser().parse(body)
    for i, t in enumerate(tokens):
        if t.type == "paragraph_open" and t.level == 0 and i + 1 < len(tokens):
            text = _inline_text(tokens[i + 1])
            if text:
                if len(text) > SUMMARY_CHARS:
                    text = text[: SUMMARY_CHARS - 1].rsplit(" ", 1)[0] + "…"
                return text
    return ""
