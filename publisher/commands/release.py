"""``publisher release [RECIPES_DIR] [--changed-since REF] [--dry-run] [--matrix]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.build import BuildOptions
from publisher.commands.common import add_threads, parse_size
from publisher.merge.engine import DEFAULT_SHARD_BYTES
from publisher.release import (
    MAX_MATRIX_JOBS,
    ReleaseOptions,
    Row,
    decide,
    default_templates_dir,
    load_catalog,
    matrix,
    removed_recipes,
    run_release,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "release",
        help="build and publish the recipes that changed, parents first",
        description="Release every recipe of RECIPES_DIR in dependency order: a version not yet published is "
        "built and published (one commit and tag per repo); a published one only has its cards re-rendered "
        "(README-only commits). With --changed-since, only the recipes changed since REF (and their "
        "dependents) are released, and a template change re-renders the cards.",
    )
    p.add_argument("recipes", type=Path, nargs="?", default=Path("recipes"), help="recipes folder (default recipes/)")
    p.add_argument("--changed-since", metavar="REF", help="git ref to compare with (default: release everything)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; build and publish nothing")
    p.add_argument("--matrix", action="store_true", help="print the GitHub Actions matrix (JSON, in waves) and exit")
    p.add_argument("--max-waves", type=int, metavar="N", help="with --matrix: fail when more than N waves are needed")
    p.add_argument(
        "--max-jobs", type=int, default=MAX_MATRIX_JOBS, metavar="N",
        help=f"with --matrix: pack a wider wave into N jobs (default {MAX_MATRIX_JOBS}, GitHub's limit)",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", help="release only these recipes (by name)")
    p.add_argument("--builds", type=Path, default=Path(".publisher/builds"), help="where builds are kept")
    p.add_argument("--templates", type=Path, metavar="DIR", help="the catalog's templates (default: templates/ beside RECIPES_DIR)")
    p.add_argument("--endpoint", help="Hub endpoint (default $HF_ENDPOINT or huggingface.co)")
    p.add_argument("--strict", action="store_true", help="fail on unknown ancestry instead of warning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--stream", action="store_true",
        help="read Hub parents by Range requests and upload each shard as it is written (disk: 2 shards)",
    )
    p.add_argument("--max-shard-size", type=parse_size, default=DEFAULT_SHARD_BYTES, help="default 5GB")
    add_threads(p)
    p.set_defaults(func=run)


def print_rows(rows: list[Row], console: Console) -> None:
    table = Table("recipe", "version", "action", "repo", "commit", "time", title="release")
    for r in rows:
        table.add_row(
            escape(r.recipe), r.version, escape(r.action), escape("\n".join(r.repos)), (r.commit or "")[:12], f"{r.seconds:.1f}s"
        )
    console.print(table)


def console_for_logs(stderr: bool = False) -> Console:
    """Wide enough for repo ids in CI logs (not a terminal: rich would assume 80 columns)."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 200
    return Console(stderr=stderr, highlight=False, width=width)


def run(args: argparse.Namespace) -> int:
    console = console_for_logs()
    err = console_for_logs(stderr=True)
    templates = args.templates or default_templates_dir(args.recipes)
    if args.matrix:
        nodes = load_catalog(args.recipes)
        decisions = decide(nodes, args.recipes, args.changed_since, templates)
        plan = matrix(nodes, decisions, Path.cwd(), max_waves=args.max_waves, max_jobs=max(1, args.max_jobs))
        print(json.dumps(plan))
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
        templates_dir=templates,
        stream=args.stream,
        build=BuildOptions(
            threads=args.threads,
            shard_bytes=args.max_shard_size,
            quiet=args.quiet,
            warn=lambda msg: err.print(f"[yellow]warning:[/] {escape(msg)}"),
        ),
    )

    def log(msg: str) -> None:
        console.print(escape(msg))

    rows = run_release(args.recipes, since=args.changed_since, options=options, log=log)
    for r in rows:
        if r.reason and r.action != "unchanged":
            log(f"{r.recipe}: {r.action} ({r.reason})")
    for name, reason in removed_recipes(load_catalog(args.recipes), args.recipes, args.changed_since).items():
        log(f"{name}: removed ({reason})")
    print_rows(rows, console)
    return 0
