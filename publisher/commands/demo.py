"""``publisher demo``: the whole flow offline, against an in-process local Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from publisher.commands.release import console_for_logs, print_rows
from publisher.demo import RECIPES, DemoResult, run_demo


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the offline demo end to end (local Hub, stand-ins, release, catalog)")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="where everything goes (default demo-out/)")
    p.add_argument("--recipes", type=Path, default=RECIPES, help="recipes to release (default: the recipes/ publisher ships)")
    p.add_argument("--serve", action="store_true", help="keep the local Hub running afterwards (Ctrl-C stops it)")
    p.add_argument("--progress", action="store_true", help="show merge progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = console_for_logs()

    def ready(result: DemoResult) -> None:
        print_rows(result.rows, console)
        console.print(f"[bold]done in {result.seconds:.0f}s[/]: {len(result.rows)} recipes released to {result.hub_url}")
        console.print(f"  builds:  {(args.out / 'builds').absolute()}")
        if result.site is not None:
            console.print(f"  catalog: {result.site}")
        console.print(f"  local Hub data: {(args.out / 'hub').absolute()}")
        if args.serve:
            console.print(f"[bold]serving[/] {result.hub_url} (open it in a browser); Ctrl-C to stop")
        else:
            console.print("  (run with --serve to keep the local Hub running and browse it)")

    if not args.progress:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    run_demo(
        args.out,
        recipes_dir=args.recipes,
        quiet=not args.progress,
        serve=args.serve,
        on_ready=ready,
        log=lambda msg: console.print(escape(msg)),
    )
    return 0
