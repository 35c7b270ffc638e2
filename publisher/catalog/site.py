"""The static catalog site: catalog.json, index.html and one page per model, from Jinja2 templates.

Templates live in ``templates/catalog/`` (``base.html.j2``, ``index.html.j2``,
``model.html.j2``, ``lineage.html.j2``, ``macros.html.j2``); a ``--template-dir`` is
searched first, so a user overrides any of them, or extends one (``{% extends
"builtin/base.html.j2" %}`` reaches the shipped one even from an override of the same name). Autoescaping is on: card text, repo ids and
every other value from the Hub is escaped; only our own renderers' output (the card
HTML, whose rules are in ``markdown.py``) is marked safe. The pages need no server and no
network: no external scripts, styles or fonts; filters are inline JS over embedded JSON.

The site is written to ``.<out>.partial`` and swapped into place when whole.
"""

from __future__ import annotations

import os
import re
import shutil
import traceback
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from publisher import __version__
from publisher.card.facts import format_date
from publisher.catalog.graph import layout
from publisher.catalog.markdown import render_card
from publisher.catalog.schema import CATALOG_FILE, Catalog, CatalogEntry, LineageData
from publisher.errors import CatalogError, PublisherError
from publisher.resources import resource_dir

TEMPLATES_DIR = resource_dir("templates") / "catalog"
INDEX = "index.html"
CARD_SECTIONS_SHOWN = ("Lineage", "Key characteristics")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMBT]?)$")
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def size_value(size: str) -> float:
    """'7B' -> 7e9, '78.9K' -> 78900: the size filter lists sizes in order."""
    m = _SIZE.match(size)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("inf")


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise CatalogError("--template-dir is not a folder", where=str(template_dir))
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES_DIR)))
    # "builtin/base.html.j2": the shipped template even where the user's folder overrides it
    loaders.append(jinja2.PrefixLoader({"builtin": jinja2.FileSystemLoader(str(TEMPLATES_DIR))}))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = lambda d: format_date(d) if d else "unpublished"
    env.filters["short"] = lambda sha: (sha or "")[:12]
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    env.filters["method_name"] = method_name
    env.globals["publisher_version"] = __version__
    return env


def method_name(method: str | None) -> str:
    """'slerp' -> 'SLERP', 'dare_ties' -> 'DARE TIES'; a method we do not implement as written."""
    from publisher.merge.methods import REGISTRY

    if not method:
        return ""
    spec = REGISTRY.get(method)
    return spec.pretty_name if spec is not None and spec.pretty_name else method


def tree_rows(data: LineageData) -> list[dict[str, Any]]:
    """The lineage as an indented list (depth, node, repeated), the model first."""
    by_id = {n.id: n for n in data.nodes}
    parents: dict[str, list[str]] = {}
    for p, c in data.edges:
        parents.setdefault(c, []).append(p)
    root = next((n.id for n in data.nodes if n.is_root), None)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def rec(nid: str, depth: int, path: tuple[str, ...]) -> None:
        repeated = nid in seen and bool(parents.get(nid))
        rows.append({"depth": depth, "node": by_id[nid], "repeated": repeated})
        seen.add(nid)
        if repeated or nid in path:
            return
        for p in parents.get(nid, []):
            rec(p, depth + 1, (*path, nid))

    if root is not None:
        rec(root, 0, ())
    return rows


def model_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """One row per model: its unquantized form first (the row's name), every form a chip.

    A model and its quantized copies share ``family`` (the merged model's repo id).
    """
    groups: dict[str, list[CatalogEntry]] = {}
    for e in catalog.models:
        groups.setdefault(e.family.casefold(), []).append(e)
    rows: list[dict[str, Any]] = []
    for members in groups.values():
        members.sort(key=lambda e: (e.quantized, e.variant.casefold(), e.repo_id.casefold()))
        rows.append({"primary": members[0], "variants": members})
    rows.sort(key=lambda r: r["primary"].repo_id.casefold())
    return rows


def _values(entries: list[CatalogEntry], get: Any) -> list[str]:
    return list(dict.fromkeys(v for e in entries if (v := get(e))))


def index_data(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the index's inline script filters on, one item per row (same order).

    A filter matches a row when any of its variants has the value (quant: BF16 or FP8).
    """
    out = []
    for row in rows:
        entries: list[CatalogEntry] = row["variants"]
        words: list[str] = []
        for e in entries:
            words += [e.repo_id, e.summary, e.method or "", e.license or "", e.strip.architecture, e.variant, *e.parents, *e.tags]
        out.append(
            {
                "repo": row["primary"].repo_id,
                "method": _values(entries, lambda e: e.method),
                "license": _values(entries, lambda e: e.license),
                "quant": _values(entries, lambda e: e.variant),
                "size": _values(entries, lambda e: e.strip.size),
                "text": " ".join(" ".join(words).casefold().split()),
            }
        )
    return out


def _options(values: list[str], key: Any = None) -> list[str]:
    return sorted({v for v in values if v}, key=key or str.casefold)


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as e:
        raise CatalogError(f"template syntax error: {e.message}", where=f"{e.filename or e.name}:{e.lineno}") from None
    except jinja2.TemplateNotFound as e:
        raise CatalogError(f"template not found: {e.name}", where=name, fix="a --template-dir may extend the built-in templates") from None
    except jinja2.UndefinedError as e:
        raise CatalogError(f"template uses an undefined variable ({e.message})", where=_template_location(e) or name,
                           fix="see templates/catalog/ for the variables each page gets") from None
    except PublisherError:
        raise
    except Exception as e:
        raise CatalogError(f"template failed: {type(e).__name__}: {e}", where=_template_location(e) or name) from None


def _template_location(exc: BaseException) -> str | None:
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if fname.endswith(".j2") or "/templates/" in fname:
            where = f"{fname}:{lineno}"
    return where


def render_pages(catalog: Catalog, template_dir: Path | None = None) -> dict[str, str]:
    """Every page of the site by its path relative to the site root (catalog.json included)."""
    env = environment(template_dir)
    models = catalog.models
    filters = {
        "method": _options([e.method or "" for e in models]),
        "license": _options([e.license or "" for e in models]),
        "quant": _options([e.variant for e in models]),
        "size": _options([e.strip.size for e in models], key=size_value),
    }
    pages_by_repo = {e.repo_id.casefold(): e.page for e in models}
    rows = model_rows(catalog)
    pages: dict[str, str] = {CATALOG_FILE: catalog.to_json()}
    pages[INDEX] = _render(
        env,
        "index.html.j2",
        {
            "catalog": catalog, "models": models, "rows": rows, "filters": filters, "data": index_data(rows),
            "root": "", "page_for": lambda repo_id: pages_by_repo.get(str(repo_id).casefold()),
        },
    )
    by_repo = {e.repo_id.casefold(): e for e in models}
    for e in models:
        pages[e.page] = _render(env, "model.html.j2", model_context(catalog, e, by_repo))
    return pages


def model_context(catalog: Catalog, e: CatalogEntry, by_repo: dict[str, CatalogEntry]) -> dict[str, Any]:
    root = "../" * e.page.count("/")
    parents = [{"repo_id": p, "page": by_repo[p.casefold()].page if p.casefold() in by_repo else None} for p in e.parents]
    return {
        "catalog": catalog,
        "model": e,
        "root": root,
        "parents": parents,
        # the page states the strip, the lineage and the facts: the card's own copies are left out
        "card_html": Markup(render_card(
            e.card, title=e.repo_id, drop_strip=True, drop_sections=CARD_SECTIONS_SHOWN, drop_summary=e.summary or None
        )),
        "graph": layout(e.lineage),
        "tree": tree_rows(e.lineage),
    }


def write_site(catalog: Catalog, out: Path, *, template_dir: Path | None = None) -> Path:
    """Render everything first, then write ``.<out>.partial`` and swap it into place; returns index.html."""
    out = Path(out)
    pages = render_pages(catalog, template_dir)
    if out.exists() and not out.is_dir():
        raise CatalogError("--out exists and is not a folder", where=str(out))
    if out.is_dir() and any(out.iterdir()) and not (out / CATALOG_FILE).is_file():
        raise CatalogError(
            "--out is a folder that is not a catalog (no catalog.json); refusing to replace it",
            where=str(out), fix="give a new or empty folder",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial"
    old = out.parent / f".{out.name}.old"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    try:
        for rel, text in pages.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as e:
        raise CatalogError(f"cannot write the site ({e.strerror})", where=str(e.filename or out)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
    return out / INDEX
