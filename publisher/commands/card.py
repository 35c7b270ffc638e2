"""``publisher card BUILD_DIR``: (re)render the README.md of every variant of a build."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from publisher.errors import CardError

console = Console(stderr=True, highlight=False, soft_wrap=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "card",
        help="render the model cards (README.md) of a build directory",
        description="Render README.md for the merged model and each variant of a build, from the "
        "files, the manifest, the recipe and the parents' cards (lineage, licenses).",
    )
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR")
    p.add_argument("--strict", action="store_true", help="fail when any part of the ancestry is unknown")
    p.add_argument("--template", type=Path, metavar="PATH", help="a Jinja2 card template (may extend card/default.md.j2)")
    p.add_argument("--recipes", type=Path, metavar="DIR", help="the catalog's recipes: sibling parents and newer card text")
    p.add_argument("--published", metavar="YYYY-MM-DD", help="publish date to show (default: the build date)")
    p.add_argument("--endpoint", metavar="URL", help="Hub endpoint for parents' cards (default: HF_ENDPOINT)")
    p.add_argument(
        "--cards", type=Path, metavar="DIR",
        help="read parents' cards from a folder laid out like the Hub (DIR/<namespace>/<name>/README.md) instead of an endpoint",
    )
    p.add_argument("--max-depth", type=int, default=8, metavar="N", help="how many generations of ancestors to follow")
    p.add_argument("--dry-run", action="store_true", help="render and validate, write nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from publisher.card.fetchers import FolderFetcher
    from publisher.card.render import render_cards

    published = None
    if args.published:
        try:
            published = date.fromisoformat(args.published)
        except ValueError:
            raise CardError(f"--published {args.published!r} is not a date", fix="use YYYY-MM-DD") from None
    if args.cards and not args.cards.is_dir():
        raise CardError("--cards is not a folder", where=str(args.cards))
    if args.max_depth < 1:
        raise CardError("--max-depth must be at least 1")
    result = render_cards(
        args.build_dir,
        strict=args.strict,
        template=args.template,
        recipes_dir=args.recipes,
        published=published,
        endpoint=args.endpoint,
        fetcher=FolderFetcher(args.cards) if args.cards else None,
        max_depth=args.max_depth,
        write=not args.dry_run,
        warn=lambda w: console.print(f"[yellow]warning:[/] {escape(w)}"),
    )
    for c in result.cards:
        s = c.strip
        verb = "wrote" if not args.dry_run else "rendered"
        console.print(
            f"{verb} {escape(str(c.path))}: {escape(c.variant)} · {s.size} · {s.quant} · ctx {s.context} "
            f"· {escape(s.license or 'unknown')} · {escape(s.architecture)}"
        )
    return 0
