"""``publisher demo``: the whole flow offline, on generated stand-in parents."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from publisher.demo import run_demo


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run the offline demo end to end")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="where everything goes (default demo-out/)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    result = run_demo(args.out, quiet=args.quiet)
    m = result.manifest
    state = "already built" if result.skipped else f"built in {m.timings.total_s:.1f}s"
    console.print(f"[bold]{m.recipe_name}[/] {m.recipe_version}: {state} → {result.out}")
    for v in m.variants:
        console.print(f"  {v.name}: {v.dtype}, {v.parameter_count:,} parameters, {len(v.files)} files")
    console.print(f"model folder: {result.out} (AutoModelForCausalLM.from_pretrained loads it)")
    return 0
