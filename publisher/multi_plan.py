"""``publisher plan`` of a mergekit-multi file: every stage planned from headers, none built.

Each stage is planned as ``plan`` plans one document (Hub parents by Range requests, no
weights). A later stage reads an earlier one's output, which does not exist yet, so each
planned stage leaves a header-only copy of what it would write (config, tokenizer files and
one safetensors header over a sparse hole of the right size) where its build would go: the
next stage plans against exactly the tensors, shapes and dtypes the stage will produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publisher.build import load_plan, merged_variant
from publisher.errors import PublisherError
from publisher.hub.ranged import write_header_copy
from publisher.merge.plan import MergePlan
from publisher.multi import Document, Stage, prepare, relocate, relocated, stage_folder
from publisher.side_files import write_side_files
from publisher.tensors import encode_header


@dataclass
class PlannedStage:
    stage: Stage
    plan: MergePlan
    warnings: list[str]  # pointed at the user's file and line
    folder: Path | None  # where the stage's header-only output is (None: the final merge)


def plan_multi(path: Path, docs: list[Document], scratch: Path, *, strict: bool = False) -> list[PlannedStage]:
    """The plan of every document in dependency order (``scratch``: a temporary folder)."""
    stages_dir = scratch / "stages"
    parents = scratch / "parents"
    stages_dir.mkdir(parents=True, exist_ok=True)
    parents.mkdir(parents=True, exist_ok=True)
    out = []
    for stage in prepare(path, docs, stages_dir):
        recipe = stages_dir / f"{stage.label.replace('/', '--')}.yaml"
        recipe.write_text(stage.text)
        try:
            plan = load_plan(recipe, headers_dir=parents, strict=strict, recipe_outputs=stage.recipe_outputs)
        except PublisherError as e:
            raise relocated(e, recipe, path, stage.doc) from None
        folder = stage_folder(stages_dir, stage.doc.name) if stage.doc.name is not None else None
        if folder is not None:
            write_planned_output(plan, folder)
        warnings = [relocate(w, recipe, path, stage.doc) for w in plan.recipe.warnings]
        out.append(PlannedStage(stage, plan, warnings, folder))
    return out


def write_planned_output(plan: MergePlan, folder: Path) -> None:
    """A header-only copy of the merged model the plan would write."""
    folder.mkdir(parents=True, exist_ok=True)
    variant = merged_variant(plan)
    write_side_files(plan, variant, folder, b"")
    header = encode_header(variant.planned, {"format": "pt"})
    write_header_copy(folder / "model.safetensors", header, len(header) + sum(t.nbytes for t in variant.planned))
