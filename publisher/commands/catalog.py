"""``publisher catalog [--endpoint URL | --builds DIR] --out SITE``: catalog.json and a static site."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "catalog",
        help="build catalog.json and a static catalog site of the published models",
        description="Read every published model repo of a Hub endpoint (cards, version tags, config.json and "
        "the safetensors headers only, never the weights), or every build under a folder, and write "
        "SITE/catalog.json, SITE/index.html (search and filters, no server needed) and a page per model "
        "(card, lineage graph, variants, versions).",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--endpoint", metavar="URL", help="Hub endpoint to read (default: $HF_ENDPOINT or https://huggingface.co)")
    source.add_argument("--builds", type=Path, metavar="DIR", help="list the builds under DIR instead of a Hub")
    p.add_argument("--out", type=Path, required=True, metavar="SITE", help="the site folder to write (replaced whole)")
    p.add_argument("--template-dir", type=Path, metavar="DIR", help="Jinja2 templates overriding templates/catalog/")
    p.add_argument("--author", action="append", default=[], metavar="NAMESPACE",
                   help="only the repos of this user or organisation (repeatable)")
    p.add_argument("--include-untagged", action="store_true", help="list repos that have no version tag (v*) too")
    p.add_argument("--cards", type=Path, metavar="DIR",
                   help="with --builds: parents' cards from a folder laid out like the Hub (DIR/<ns>/<name>/README.md)")
    p.add_argument("--strict", action="store_true", help="fail on a repo that cannot be listed (malformed card, unreadable weights)")
    p.add_argument("--hub-url", metavar="URL",
                   help="the public Hub the pages link to (default: the endpoint, never a loopback one; "
                   "with --builds https://huggingface.co)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from publisher.catalog import build_catalog
    from publisher.errors import CatalogError

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.cards is not None and args.builds is None:
        raise CatalogError("--cards goes with --builds (a Hub endpoint has the parents' cards)")
    if args.cards is not None and not args.cards.is_dir():
        raise CatalogError("--cards is not a folder", where=str(args.cards))
    result = build_catalog(
        args.out,
        endpoint=args.endpoint,
        builds=args.builds,
        template_dir=args.template_dir,
        authors=args.author,
        include_untagged=args.include_untagged,
        cards_dir=args.cards,
        strict=args.strict,
        hub_url=args.hub_url,
        warn=lambda w: err.print(f"[yellow]warning:[/] {escape(w)}"),
    )
    console = Console(highlight=False, soft_wrap=True)
    catalog = result.catalog
    table = Table(title=f"catalog of {catalog.location}", title_justify="left")
    table.add_column("repo", overflow="fold", ratio=1, min_width=24)
    for col in ("variant", "size", "ctx", "license", "method", "version"):
        table.add_column(col, no_wrap=True, overflow="ellipsis")
    for e in catalog.models:
        table.add_row(
            escape(e.repo_id), escape(e.variant), escape(e.strip.size), escape(e.strip.context),
            escape(e.license or "unknown"), escape(e.method or "-"), escape(e.strip.version or "-"),
        )
    console.print(table)
    quiet_skips = len(catalog.skipped) - len(result.warnings)
    if quiet_skips:
        console.print(f"[dim]{quiet_skips} repo(s) without a version tag left out (--include-untagged lists them)[/]")
    if result.lineage_gaps:
        console.print(f"[dim]{result.lineage_gaps} ancestor(s) could not be read: shown as unknown (catalog.json lineage.gaps)[/]")
    if catalog.source == "hub" and catalog.hub_url is None:
        console.print("[dim]the endpoint is a loopback address: the pages name no Hub and link no repo there "
                      "(--hub-url URL gives the public one)[/]")
    console.print(f"{len(catalog.models)} models → [bold]{escape(str(result.index))}[/]")
    return 0
