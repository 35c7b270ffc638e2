"""``publisher plan RECIPE``: validate and summarise a merge from headers alone."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from publisher.build import estimated_peak_rss, load_plan, merged_variant, quantized_variants
from publisher.commands.common import add_threads
from publisher.merge.plan import MergePlan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="validate a recipe and summarise the merge (reads headers only)")
    p.add_argument("recipe", type=Path)
    add_threads(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="publisher-plan-") as headers:
        # Hub parents: configs, tokenizer and safetensors headers by Range requests, no weights
        return _report(args, load_plan(args.recipe, headers_dir=Path(headers)))


def _report(args: argparse.Namespace, plan: MergePlan) -> int:
    variants = [merged_variant(plan), *quantized_variants(plan)]
    groups: Counter[str] = Counter()
    for t in plan.tensors:
        per_model = [
            ", ".join(f"{k}={_fmt(v)}" for k, v in mp.items() if v is not None) for mp in t.model_params
        ]
        key = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        if any(per_model):
            key += (" | " if key else "") + " ; ".join(per_model)
        groups[key or "(no parameters)"] += 1
    disk = sum(p.nbytes for v in variants for p in v.planned)
    peak = estimated_peak_rss(plan, args.threads)
    summary: dict[str, object] = {
        "recipe": str(args.recipe),
        "name": plan.recipe.recipe.name,
        "method": plan.method.name,
        "models": [m.ref for m in plan.models],
        "pinned": {m.ref: m.revision for m in plan.models if m.kind == "hub"},
        "layers": plan.layer_count,
        "tensors": len(plan.tensors),
        "parameters": plan.parameter_count,
        "out_dtype": plan.out_dtype,
        "output_bytes": plan.output_bytes,
        "disk_bytes": disk,
        "variants": [v.name for v in variants],
        "estimated_peak_rss_bytes": peak,
        "parameter_groups": dict(groups),
        "notes": plan.notes,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    console = Console(highlight=False)
    console.print(
        f"[bold]{plan.recipe.recipe.name or args.recipe}[/]: {plan.method.pretty_name or plan.method.name} of "
        + ", ".join(f"{m.ref}@{m.revision[:7]}" if m.kind == "hub" and m.revision else m.ref for m in plan.models)
    )
    table = Table("tensors", "parameters", title="output tensors by parameter value")
    for key, count in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(str(count), key)
    console.print(table)
    console.print(
        f"layers {plan.layer_count}, tensors {len(plan.tensors)}, parameters {plan.parameter_count / 1e9:.3f}B, "
        f"dtype {plan.out_dtype}, output {plan.output_bytes / 1e9:.2f} GB, disk needed {disk / 1e9:.2f} GB "
        f"(variants: {', '.join(v.name for v in variants)}), "
        f"estimated peak memory {peak / 2**30:.2f} GiB with {args.threads} threads"
    )
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
    return 0
