"""``publisher quantize MODEL_DIR --scheme fp8-dynamic --out DIR``: FP8 variant of an existing model."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from publisher.commands.common import parse_size
from publisher.errors import PublisherError, QuantizeError
from publisher.quantize import DEFAULT_MAX_SHARD_BYTES, DEFAULT_SCHEME, SCHEMES, quantize_model
from publisher.quantize.model import source_order
from publisher.tensors import ModelFiles


def _shard_size(text: str) -> int:
    try:
        size = parse_size(text)
    except argparse.ArgumentTypeError as e:
        raise QuantizeError(str(e), where="--max-shard-size") from e
    if size <= 0:
        raise QuantizeError("shard size must be positive", where="--max-shard-size")
    return size


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 10**9 else f"{n / 1e6:.1f} MB"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "quantize",
        help="write an FP8 copy of a bf16/fp16 safetensors model folder (streaming)",
        description="Quantize an existing bf16/fp16 safetensors model to FP8 (compressed-tensors "
        "format, loadable by vLLM and transformers), reading and writing tensor by tensor.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", type=Path, help="folder with config.json and *.safetensors")
    p.add_argument("--out", required=True, type=Path, help="new folder to create (must not exist)")
    p.add_argument(
        "--scheme",
        default=DEFAULT_SCHEME,
        help=f"one of {', '.join(SCHEMES)} (default {DEFAULT_SCHEME})",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="MODULE",
        help="keep a Linear module unquantized: exact name or re:REGEX (repeatable)",
    )
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: cores, at most 4)")
    p.add_argument(
        "--max-shard-size",
        default=str(DEFAULT_MAX_SHARD_BYTES),
        help="largest shard, e.g. 5GB (default 5GB)",
    )
    p.add_argument("--name", metavar="REPO_ID", help="the repo it publishes to (publisher publish), e.g. org/model-FP8")
    p.add_argument("--version", metavar="VERSION", default="1.0.0", help="the version it publishes as (tag v{version}; default 1.0.0)")
    p.add_argument("--fsync", action="store_true", help="fsync each shard before it is renamed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    max_shard = _shard_size(args.max_shard_size)
    if args.name is not None:
        from publisher.hub.ids import InvalidName, split_repo_id

        try:
            split_repo_id(args.name)
        except InvalidName as e:
            raise QuantizeError(str(e), where="--name", fix="use namespace/name") from None
    if args.threads is not None and args.threads < 1:
        raise QuantizeError("--threads must be at least 1", where="--threads")
    console = Console(stderr=True, highlight=False)
    show = not args.quiet and console.is_terminal
    try:
        total = sum(t.nbytes for t in source_order(ModelFiles.open(args.model_dir)))
    except PublisherError:
        total = 0  # quantize_model reports the problem with its full message
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task("quantizing", total=total or None)
        result = quantize_model(
            args.model_dir,
            args.out,
            args.scheme,
            ignore=args.ignore,
            threads=args.threads,
            max_shard_bytes=max_shard,
            fsync=args.fsync,
            progress=lambda n: bar.advance(task, n),
            repo_id=args.name,
            version=args.version,
        )
    Console(highlight=False, soft_wrap=True).print(
        f"{result.scheme}: {result.quantized} tensors to FP8, {result.kept} kept "
        f"(ignored: {', '.join(result.ignored_modules) or 'none'}); "
        f"{_size(result.source_bytes)} -> {_size(result.output_bytes)} "
        f"in {len(result.files)} files, {result.seconds:.1f} s -> {escape(str(result.out))}"
    )
    if args.name is not None and not args.quiet:  # what a build does itself: the release gate, then the card
        out = escape(str(result.out))
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"to publish it as {escape(args.name)}: publisher check {out} && publisher card {out} && publisher publish {out}"
        )
    return 0
