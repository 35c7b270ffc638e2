"""The Jinja2 environment cards are rendered in: loaders, Markdown-escaping filters, error lines.

Templates come from the user's folder (``--template`` / ``card.template``), then a catalog's
``templates/`` folder, then the built-in ``templates/``; a failing template is reported as
one line naming the template file and line.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from publisher.card.text import finalize as md_finalize
from publisher.card.text import (
    md_cell,
    md_code,
    md_fenced,
    md_inline,
    md_paragraphs,
    mermaid_label,
    py_str,
)
from publisher.errors import CardError, PublisherError
from publisher.resources import resource_dir

TEMPLATES_DIR = resource_dir("templates")
DEFAULT_TEMPLATE = "card/default.md.j2"


def template_environment(user_dir: Path | None = None, templates_dir: Path | None = None) -> jinja2.Environment:
    """Strict, Markdown-escaping Jinja2: the user's folder, the catalog's templates, the built-in ones.

    A catalog's ``templates/card/default.md.j2`` replaces the built-in default of that name; it
    can still extend the original as ``builtin/card/default.md.j2``.
    """
    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(user_dir)))
    if templates_dir is not None and Path(templates_dir).resolve() != TEMPLATES_DIR:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES_DIR)))
    loaders.append(jinja2.PrefixLoader({"builtin": jinja2.FileSystemLoader(str(TEMPLATES_DIR))}))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # so macro output is Markup; finalize escapes Markdown, not HTML only
        finalize=md_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=lambda v: jinja2.utils.markupsafe.Markup(md_inline(v)),
        paragraphs=md_paragraphs,
        code=md_code,
        fenced=md_fenced,
        cell=lambda v: jinja2.utils.markupsafe.Markup(md_cell(v)),
        py=py_str,
        mermaid=mermaid_label,
        join_names=join_names,
        thousands=lambda n: f"{int(n):,}",
        gb=human_bytes,
        url=url_filter,
    )
    return env


def human_bytes(n: object) -> str:
    """Decimal units, as the Hub shows file sizes: 14.5 GB, 83.2 kB."""
    v = float(n)  # type: ignore[arg-type]
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= div:
            return f"{v / div:.1f} {unit}"
    return f"{int(v)} B"


def url_filter(value: object) -> Any:
    """A URL safe to put inside ``(...)`` of a Markdown link."""
    return jinja2.utils.markupsafe.Markup(quote(str(value), safe=":/?#@!$&*+,;=%-._~"))


def join_names(items: list[Any], word: str = "and") -> jinja2.utils.markupsafe.Markup:
    """'A', 'A and B', 'A, B and C' — each item escaped unless already Markup."""
    Markup = jinja2.utils.markupsafe.Markup
    parts = [str(i) if isinstance(i, Markup) else md_inline(i) for i in items]
    if len(parts) <= 1:
        return Markup("".join(parts))
    return Markup(f"{', '.join(parts[:-1])} {word} {parts[-1]}")


def template_location(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame in a rendering traceback."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if fname.endswith((".j2", ".jinja", ".jinja2", ".md", ".html")) or "/templates/" in fname:
            where = f"{fname}:{lineno}"
    return where


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateSyntaxError as e:
        raise CardError(f"template syntax error: {e.message}", where=f"{e.filename or e.name}:{e.lineno}") from None
    except jinja2.TemplateNotFound as e:
        raise CardError(f"template not found: {e.name}", where=name, fix="check the template path") from None
    except jinja2.UndefinedError as e:
        raise CardError(
            f"template uses an undefined variable ({e.message})",
            where=template_location(e) or name,
            fix="see templates/card/default.md.j2 for the variables a card template gets",
        ) from None
    except PublisherError:
        raise
    except Exception as e:
        raise CardError(f"template failed: {type(e).__name__}: {e}", where=template_location(e) or name) from None
