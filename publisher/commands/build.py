"""``publisher build RECIPE --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from publisher.build import BuildOptions, build
from publisher.check.run import CheckOptions
from publisher.commands.check import print_report
from publisher.commands.common import add_strict, add_threads, parse_size, silence_hub_progress
from publisher.merge.engine import DEFAULT_MEMORY_BUDGET, DEFAULT_SHARD_BYTES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="merge (and quantize) a recipe into a model folder")
    p.add_argument("recipe", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the model folder to create")
    add_threads(p)
    p.add_argument("--max-shard-size", type=parse_size, default=DEFAULT_SHARD_BYTES, help="default 5GB")
    p.add_argument("--memory-budget", type=parse_size, default=DEFAULT_MEMORY_BUDGET, help="bytes of tensors in flight (default 1.5GiB)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, huggingface_hub's downloads included (CI logs)")
    p.add_argument("--no-card", action="store_true", help="skip rendering README.md cards")
    add_strict(p)
    p.add_argument(
        "--publish", action="store_true",
        help="stream: read Hub parents by Range requests, upload each shard as it is written, then publish "
        "(one commit and tag per repo); the folder keeps header-only stubs of the shards",
    )
    p.add_argument("--endpoint", help="with --publish: Hub endpoint (default $HF_ENDPOINT or huggingface.co)")
    p.add_argument("--no-measure", action="store_true", help="structural checks only (no forward pass)")
    p.add_argument("--with-parents", action="store_true", default=None, help="measure the parents too")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="where the measured pass runs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if args.quiet:
        silence_hub_progress()
    options = BuildOptions(
        warn=lambda msg: err.print(f"[yellow]warning:[/] {escape(msg)}"),
        threads=args.threads,
        shard_bytes=args.max_shard_size,
        memory_budget=args.memory_budget,
        quiet=args.quiet,
        render_cards=not args.no_card,
        strict=args.strict,
        check_options=CheckOptions(
            measure=False if args.no_measure else None, with_parents=args.with_parents, device=args.device
        ),
        log=None if args.quiet else lambda msg: console.print(f"[dim]{escape(msg)}[/]"),
    )
    if args.publish:
        return _build_and_publish(args, options, console)
    result = build(args.recipe, args.out, options)
    m = result.manifest
    if result.skipped:
        console.print(f"{result.out} already holds this build (recipe sha256 {m.recipe_sha256[:12]}); nothing to do")
        return 0
    size = sum(f.size for v in m.variants for f in v.files)
    seconds = result.record.timings.total_s if result.record else 0.0
    console.print(
        f"built {result.out} in {seconds:.1f}s: "
        + ", ".join(f"{v.name} ({v.dtype}, {len(v.files)} files)" for v in m.variants)
        + f", {size / 1e9:.2f} GB"
    )
    if result.checks is not None:
        return print_report(result.checks, result.out, console, quiet=args.quiet)
    return 0


def _build_and_publish(args: argparse.Namespace, options: BuildOptions, console: Console) -> int:
    """The streaming build, then the publisher's one commit per repo (the shards are already there)."""
    from publisher.commands.publish import print_report
    from publisher.hub.publish import publish
    from publisher.streaming import StreamTarget, stream_settings

    def log(msg: str) -> None:
        if not args.quiet:
            console.print(escape(msg))

    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    with stream_settings(args.endpoint):
        result = build(args.recipe, args.out, options, stream=StreamTarget(args.endpoint, log=log),
                       endpoint=args.endpoint)
        report = publish(result.out, endpoint=args.endpoint, log=log)
    print_report(report, console)
    return 0
