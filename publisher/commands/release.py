"""``publisher release [RECIPES_DIR] [--changed-since REF] [--dry-run] [--matrix]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.build import BuildOptions
from publisher.commands.common import add_threads
from publisher.release import ReleaseOptions, Row, decide, load_catalog, matrix, run_release


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("release", help="build and publish the recipes that changed, parents first")
    p.add_argument("recipes", type=Path, nargs="?", default=Path("recipes"), help="recipes folder (default recipes/)")
    p.add_argument("--changed-since", metavar="REF", help="git ref to compare with (default: release everything)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; build and publish nothing")
    p.add_argument("--matrix", action="store_true", help="print the GitHub Actions matrix (JSON, in waves) and exit")
    p.add_argument("--only", nargs="+", metavar="NAME", help="release only these recipes (by name)")
    p.add_argument("--builds", type=Path, default=Path(".publisher/builds"), help="where builds are kept")
    p.add_argument("--endpoint", help="Hub endpoint (default $HF_ENDPOINT or huggingface.co)")
    p.add_argument("--strict", action="store_true", help="fail on unknown ancestry instead of warning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads(p)
    p.set_defaults(func=run)


def print_rows(rows: list[Row], console: Console) -> None:
    table = Table("recipe", "version", "action", "repo", "commit", "time", title="release")
    for r in rows:
        table.add_row(
            escape(r.recipe), r.version, escape(r.action), escape("\n".join(r.repos)), (r.commit or "")[:12], f"{r.seconds:.1f}s"
        )
    console.print(table)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if args.matrix:
        nodes = load_catalog(args.recipes)
        print(json.dumps(matrix(nodes, decide(nodes, args.recipes, args.changed_since), Path.cwd())))
        return 0
    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    options = ReleaseOptions(
        builds_dir=args.builds,
        endpoint=args.endpoint,
        dry_run=args.dry_run,
        only=args.only,
        strict=args.strict,
        build=BuildOptions(
            threads=args.threads,
            quiet=args.quiet,
            warn=lambda msg: err.print(f"[yellow]warning:[/] {escape(msg)}"),
        ),
    )
    rows = run_release(
        args.recipes, since=args.changed_since, options=options, log=lambda msg: console.print(escape(msg))
    )
    print_rows(rows, console)
    return 0
