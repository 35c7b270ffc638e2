"""``publisher publish BUILD_DIR [--dry-run]``: publish a build's variants as tagged versions."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.commands.common import silence_hub_progress
from publisher.hub.publish import PublishReport, RepoResult, human_size, publish


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="publish a build to the Hub (one commit + tag per variant)",
        description="Publish every variant of BUILD_DIR as version v{version}: one commit, one tag, "
        "nothing re-uploaded. The endpoint is HF_ENDPOINT (default huggingface.co); the token "
        "HF_TOKEN or the stored login.",
    )
    p.add_argument("build_dir", type=Path, metavar="BUILD_DIR")
    p.add_argument("--dry-run", action="store_true", help="show what would change; touch nothing")
    p.add_argument("--endpoint", help="Hub URL (default: $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--quiet", action="store_true", help="no upload progress bars (CI logs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    if args.quiet:
        silence_hub_progress()
    report = publish(
        args.build_dir,
        dry_run=args.dry_run,
        endpoint=args.endpoint,
        log=None if args.quiet else lambda msg: console.print(f"[dim]{escape(msg)}[/]"),
    )
    print_report(report, console)
    return 0


def print_report(report: PublishReport, console: Console) -> None:
    if report.dry_run:
        console.print(f"[bold]dry run[/] against {escape(report.endpoint)}: nothing was changed")
        for r in report.results:
            _print_changes(r, console)
    table = Table(title=f"publish v{report.version} → {report.endpoint}", title_justify="left")
    for col in ("repo", "variant", "tag", "result", "files", "sent", "commit"):
        table.add_column(
            col,
            justify="right" if col == "sent" else "left",
            no_wrap=col not in ("repo", "result"),
            overflow="fold" if col == "repo" else "ellipsis",
            min_width=12 if col == "result" else None,
        )
    for r in report.results:
        counts = {k: sum(1 for c in r.changes if c.kind == k) for k in ("add", "change", "delete")}
        files = " ".join(f"{sign}{counts[k]}" for sign, k in (("+", "add"), ("~", "change"), ("-", "delete")) if counts[k])
        result = r.action + (f" ({r.note})" if r.note else "")
        table.add_row(
            escape(r.repo_id) + (" [dim](private)[/]" if r.private else ""),
            escape(r.variant), escape(r.tag), escape(result), files or "-",
            human_size(r.sent_bytes) if r.sent_bytes else "-", (r.commit or "")[:7],
        )
    console.print(table)


def _print_changes(r: RepoResult, console: Console) -> None:
    console.print(f"[bold]{escape(r.repo_id)}[/] {escape(r.tag)}: {escape(r.action)}" + (f" ({escape(r.note)})" if r.note else ""))
    signs = {"add": "[green]+[/]", "change": "[yellow]~[/]", "delete": "[red]-[/]"}
    for c in r.changes:
        console.print(f"  {signs[c.kind]} {escape(c.path)}  {human_size(c.size)}")
    if not r.changes:
        console.print("  (no file changes)")
