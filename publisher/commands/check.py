"""``publisher check BUILD_DIR``: structural checks, the measured pass and the gate; writes checks.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.check.results import CHECKS_FILE, CheckReport
from publisher.check.run import CheckOptions, check_build, settings_of, with_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="check and measure a build (the release gate); writes checks.json",
        description="Structural checks of every variant (config against tensors, tokenizer, chat "
        "template, generation config, FP8 layout), then perplexity over the standard library's "
        "pydoc topics with transformers' own modeling code, one layer in memory at a time, and "
        "each FP8 variant against the merged model (top-1 agreement, KL) as vLLM computes it. "
        "Exit 2 when a check or a threshold of the recipe's checks: section fails.",
    )
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR")
    p.add_argument("--with-parents", action="store_true", default=None, help="also measure every parent")
    p.add_argument("--no-measure", dest="measure", action="store_false", default=None, help="structural checks only")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="where the forward pass runs (default: cpu)")
    p.add_argument("--tokens", type=int, default=None, help="evaluation tokens (default: the recipe's, 512)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    options = CheckOptions(measure=args.measure, with_parents=args.with_parents, device=args.device, tokens=args.tokens)
    settings = with_options(settings_of(args.build_dir), options)
    if not settings.measure:
        from publisher.check.notorch import tokenizers_without_torch

        tokenizers_without_torch()  # this process measures nothing: spare it torch's import
    report = check_build(args.build_dir, settings=settings, log=lambda m: console.print(f"[dim]{escape(m)}[/]"))
    code = print_report(report, args.build_dir, console)
    if (args.build_dir / "README.md").is_file():
        # cards are rendered with the catalog's options (recipes, endpoint): not guessed here
        console.print(f"the cards state the measurement once re-rendered: publisher card {escape(str(args.build_dir))}")
    return code


def print_report(report: CheckReport, build_dir: Path, console: Console, *, quiet: bool = False) -> int:
    """The measurements as a table (not when ``quiet``), each failure as one line on stderr, then the
    verdict line; 2 when the gate is closed."""
    if report.measurements and report.text is not None and not quiet:
        t = report.text
        table = Table(
            title=f"measured over {t.tokens} tokens of {t.source} (sha256 {t.sha256[:12]}) on {report.device}",
            title_justify="left",
        )
        for col in ("model", "perplexity", "top-1 agreement", "mean KL", "recovery", "time"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for m in report.measurements:
            table.add_row(
                escape(m.variant),
                f"{m.perplexity:.4g}",
                "-" if m.top1_agreement is None else f"{m.top1_agreement:.4f}",
                "-" if m.mean_kl is None else f"{m.mean_kl:.3g}",
                "-" if m.recovery is None else f"{m.recovery:.2%}",
                f"{m.seconds:.1f}s",
            )
        console.print(table)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for f in report.findings:
        err.print(f"[bold red]error:[/] {escape(f.line(build_dir))}")
    verdict = "passed" if report.passed else f"failed ({len(report.findings)} problem{'s' if len(report.findings) != 1 else ''})"
    console.print(f"checks {verdict}: {build_dir / CHECKS_FILE}")
    return 0 if report.passed else 2
