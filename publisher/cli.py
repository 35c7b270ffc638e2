"""The ``publisher`` program: parses arguments, calls the library, maps errors to exit codes.

Each command lives in ``publisher/commands/<name>.py`` with ``register(subparsers)``; this
module only wires them up and turns every ``PublisherError`` into one line on stderr and
its exit code (2 for bad input, 1 for environment failures), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from publisher import __version__
from publisher.errors import PublisherError
from publisher.hub.reach import install as fail_fast_when_unreachable

COMMANDS = ("plan", "build", "quantize", "check", "card", "publish", "release", "catalog", "hub", "demo")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Every command's parser, or only the named one's when ``argv`` names a command.

    Registering a command imports its module; ``publisher check --no-measure`` must not pay for
    the build engine, the Hub server or the demo (the structural checks take well under 2 s).
    """
    parser = argparse.ArgumentParser(
        prog="publisher",
        description="Turn recipe files into merged, FP8-quantized, carded and published models.",
    )
    parser.add_argument("--version", action="version", version=f"publisher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    named = words[0] if words and words[0] in COMMANDS else None
    for name in (named,) if named else COMMANDS:
        try:
            module = importlib.import_module(f"publisher.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"publisher.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    fail_fast_when_unreachable()
    try:
        code = args.func(args)
    except PublisherError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}")
        return e.exit_code
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]; rerun the same command to resume")
        return 130
    return int(code or 0)


def run() -> None:
    from publisher.check.notorch import process_ends_after_command

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    process_ends_after_command()  # one command, then exit: `check --no-measure` may skip torch
    sys.exit(main())


if __name__ == "__main__":
    run()
