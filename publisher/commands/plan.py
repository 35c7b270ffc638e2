"""``publisher plan RECIPE``: validate and summarise a merge from headers alone.

The parameters are summarised as the card shows them: per parameter (and per model for
per-model ones), by filter and layer range, a gradient as its linear pieces. ``--json``
has everything the text shows, plus the per-tensor groups and the per-layer bands.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from publisher.build import estimated_peak_rss, load_plan, merged_variant, quantized_variants
from publisher.card.facts import human_count
from publisher.card.params import ParamTable, band_summary, parameter_tables
from publisher.card.templates import human_bytes
from publisher.commands.common import add_strict, add_threads
from publisher.merge.plan import MergePlan
from publisher.multi import split_documents
from publisher.multi_plan import PlannedStage, plan_multi


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="validate a recipe and summarise the merge (reads headers only)")
    p.add_argument("recipe", type=Path)
    add_threads(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_strict(p)
    p.set_defaults(func=run)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def parameter_groups(plan: MergePlan) -> Counter[str]:
    """Output tensors by the exact parameter values they get (the per-tensor view)."""
    groups: Counter[str] = Counter()
    for t in plan.tensors:
        per_model = [
            ", ".join(f"{k}={_fmt(v)}" for k, v in mp.items() if v is not None) for mp in t.model_params
        ]
        key = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        if any(per_model):
            key += (" | " if key else "") + " ; ".join(per_model)
        groups[key or "(no parameters)"] += 1
    return groups


def band_tables(plan: MergePlan, models: dict[str, str] | None = None) -> list[ParamTable]:
    """``models``: display names of model refs (a mergekit-multi stage's folder by its name)."""
    names = [t.name for t in plan.tensors]
    tables = parameter_tables(plan.recipe.recipe.merge, plan.method, names, plan.layer_count)
    for t in tables:
        if t.model is not None:
            t.model = (models or {}).get(t.model, t.model)
    return tables


def table_json(t: ParamTable) -> dict[str, Any]:
    return {
        "parameter": t.name,
        "model": t.model,
        "as_written": t.setting,
        "constant": t.constant,
        "columns": [
            {
                "filter": c.label,
                "tensors": c.members,
                "runs": [{"layers": [r.first, r.last], "start": r.start, "end": r.end} for r in s.runs],
            }
            for c, s in zip(t.columns, band_summary(t), strict=True)
        ],
        "bands": [{"layers": [b.first, b.last], "values": b.values} for b in t.bands],
        "outside_layers": dict(t.outside),
    }


def bands_table(tables: list[ParamTable]) -> Table:
    """One row per run of layers: parameter (and model), filter, layer range, value."""
    table = Table("parameter", "model", "filter", "layers", "value", title="parameters as applied")
    for t in tables:
        model = t.model or "all models"
        if t.constant is not None:
            default = " (method default)" if t.setting.startswith("not set") else ""
            table.add_row(t.name, model, "all", "all", f"{t.constant}{default}")
            continue
        first = True
        for s in band_summary(t):
            for i, r in enumerate(s.runs):
                values = r.start if r.start == r.end else f"{r.start} → {r.end}"
                layers = str(r.first) if r.first == r.last else f"{r.first}–{r.last}"
                table.add_row(t.name if first else "", model if first else "", s.label if i == 0 else "", layers, values)
                first = False
        if t.outside:
            outside = ", ".join(sorted({v for _, v in t.outside}))
            table.add_row("", "", "outside layers", "embeddings, final norm, head", outside)
    return table


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    with tempfile.TemporaryDirectory(prefix="publisher-plan-") as headers:
        docs = split_documents(args.recipe)
        if docs is not None:  # mergekit-multi: every stage, in the order build builds them
            return _run_stages(args, plan_multi(args.recipe, docs, Path(headers), strict=args.strict), err)
        # Hub parents: configs, tokenizer and safetensors headers by Range requests, no weights
        plan = load_plan(args.recipe, headers_dir=Path(headers), strict=args.strict)
        for warning in plan.recipe.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        summary = _summary(args, plan)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            _print(args, plan, Console(highlight=False))
        return 0


def _run_stages(args: argparse.Namespace, stages: list[PlannedStage], err: Console) -> int:
    """One plan per document; ``--json``: ``{"recipe", "stages": [summary + stage, line]}``."""
    console = Console(highlight=False)
    summaries = []
    names = {str(s.folder): s.stage.doc.name for s in stages if s.stage.doc.name and s.folder}  # temp folders by stage name
    for s in stages:
        for warning in s.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        where = f"{args.recipe}:{s.stage.doc.line}"
        summary = {"stage": s.stage.doc.name, "line": s.stage.doc.line, **_summary(args, s.plan, names)}
        summaries.append({**summary, "warnings": s.warnings})
        if not args.json:
            kind = "final merge" if s.stage.doc.name is None else f"stage {s.stage.doc.name}"
            console.rule(f"[bold]{escape(kind)}[/] ({escape(where)})", align="left")
            _print(args, s.plan, console, names)
    if args.json:
        print(json.dumps({"recipe": str(args.recipe), "stages": summaries}, indent=2))
    return 0


def _summary(args: argparse.Namespace, plan: MergePlan, names: dict[str, str] | None = None) -> dict[str, object]:
    variants = [merged_variant(plan), *quantized_variants(plan)]
    groups = parameter_groups(plan)
    tables = band_tables(plan, names)
    disk = sum(p.nbytes for v in variants for p in v.planned)
    peak = estimated_peak_rss(plan, args.threads)
    summary: dict[str, object] = {
        "recipe": str(args.recipe),
        "name": plan.recipe.recipe.name,
        "method": plan.method.name,
        "models": [(names or {}).get(m.ref, m.ref) for m in plan.models],
        "pinned": {m.ref: m.revision for m in plan.models if m.kind == "hub"},
        "layers": plan.layer_count,
        "tensors": len(plan.tensors),
        "parameters": plan.parameter_count,
        "out_dtype": plan.out_dtype,
        "output_bytes": plan.output_bytes,
        "disk_bytes": disk,
        "variants": [v.name for v in variants],
        "threads": args.threads,
        "estimated_peak_rss_bytes": peak,
        "parameter_bands": [table_json(t) for t in tables],
        "parameter_groups": dict(groups),
        "notes": plan.notes,
        "warnings": plan.recipe.warnings,
    }
    return summary


def _print(args: argparse.Namespace, plan: MergePlan, console: Console, names: dict[str, str] | None = None) -> None:
    variants = [merged_variant(plan), *quantized_variants(plan)]
    tables = band_tables(plan, names)
    disk = sum(p.nbytes for v in variants for p in v.planned)
    peak = estimated_peak_rss(plan, args.threads)
    title = plan.recipe.recipe.name or plan.recipe.recipe.label or args.recipe
    console.print(
        f"[bold]{title}[/]: {plan.method.pretty_name or plan.method.name} of "
        + ", ".join(
            f"{m.ref}@{m.revision[:7]}" if m.kind == "hub" and m.revision else (names or {}).get(m.ref, m.ref) for m in plan.models
        )
    )
    console.print(bands_table(tables))
    console.print(
        f"layers {plan.layer_count}, tensors {len(plan.tensors)}, parameters {human_count(plan.parameter_count)}, "
        f"dtype {plan.out_dtype}, output {human_bytes(plan.output_bytes)}, disk needed {human_bytes(disk)} "
        f"(variants: {', '.join(v.name for v in variants)}), "
        f"estimated peak memory {human_bytes(peak)} with {args.threads} threads"
    )
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
