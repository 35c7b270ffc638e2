"""Model cards for a build directory: facts + lineage + recipe → README.md of every variant.

The card reads only the build directory (``manifest.json``, the variant folders' files and
``recipe.yaml``), the parents' cards (lineage) and, optionally, the catalog's recipes. The
body is a Jinja2 template (``templates/card/default.md.j2``; a recipe's ``card.template``, a
catalog or ``--template`` can name another, which may ``{% extends %}`` the default and
override its blocks). The front matter is built as huggingface_hub ``ModelCardData`` and
dumped by it. Every card is validated offline (license ids, repo ids of ``base_model``,
model-index through huggingface_hub's own parser) before it is written, and all cards of a
build are written only once all of them rendered. Same inputs, same bytes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from publisher.card import evals, params, settings
from publisher.card.context import BuildContext, card_strip, model_context
from publisher.card.facts import ModelFacts, Strip, model_facts, strip_of
from publisher.card.fetchers import CardFetcher, FolderFetcher, HubFetcher
from publisher.card.frontmatter import front_matter
from publisher.card.identity import FIXED_DATE, identity_of, stamp
from publisher.card.license_check import LicenseReport, check_licenses, derive_license
from publisher.card.licenses import license_problems
from publisher.card.lineage import DEFAULT_MAX_DEPTH, Lineage, LineageNode, LineageResolver
from publisher.card.origin import SiblingRecipes
from publisher.card.provenance import default_published, parent_folder
from publisher.card.templates import (
    DEFAULT_TEMPLATE,
    TEMPLATES_DIR,
    render_template,
    template_environment,
)
from publisher.card.validate import validate_card_text
from publisher.check.card import add_measured, measured_context, unmeasured_reason
from publisher.errors import CardError, LicenseError, PublisherError
from publisher.manifest import QUANTIZE_ONLY, RECIPE_FILE, Manifest, Variant, load_manifest
from publisher.merge.methods import REGISTRY
from publisher.recipe import LoadedRecipe, load_recipe
from publisher.references import base_of
from publisher.tensors import ModelFiles

README = "README.md"
# re-exported: callers import these from here
__all__ = [
    "DEFAULT_TEMPLATE", "TEMPLATES_DIR", "CardsResult", "RenderedCard", "build_strips",
    "render_cards", "template_environment", "validate_card_text", "write_atomic",
]


@dataclass
class RenderedCard:
    variant: str  # "merged" or a quantize suffix such as "FP8"
    repo_id: str | None
    folder: Path
    text: str
    strip: Strip
    facts: ModelFacts
    # other files the card stage writes beside README.md: ``.eval_results/<task>.yaml``
    extra_files: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / README


@dataclass
class CardsResult:
    cards: list[RenderedCard]
    warnings: list[str]
    written: list[Path] = field(default_factory=list)
    license: LicenseReport | None = None
    lineage: Lineage | None = None


def _merged_card_recipe(
    build_recipe: LoadedRecipe, siblings: SiblingRecipes, warn: Callable[[str], None]
) -> tuple[LoadedRecipe, Path | None]:
    """The recipe whose ``card:`` section to use, and the folder its relative paths start from.

    The catalog's copy of the same recipe may have newer card text (a curator re-renders
    cards without rebuilding); it is used only while its merge section is the one built.
    """
    r = build_recipe.recipe
    path = siblings.by_sha.get(build_recipe.sha256)
    if path is None and r.name:
        path = siblings.paths.get(r.name.casefold())
    if path is None:
        return build_recipe, None
    try:
        current = load_recipe(path)
    except PublisherError:
        return build_recipe, path.parent
    if current.recipe.merge != r.merge or current.recipe.quantize != r.quantize:
        warn(f"{path} changed its merge since this build; the card uses the build's copy of the recipe")
        return build_recipe, path.parent
    return current, path.parent


def _tensor_names(folder: Path) -> list[str]:
    return sorted(ModelFiles.open(folder).tensors)


def render_cards(
    build_dir: Path,
    *,
    strict: bool = False,
    template: Path | None = None,
    recipes_dir: Path | None = None,
    recipe_dir: Path | None = None,
    published: date | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: Path | None = None,
    fetcher: CardFetcher | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    link_base: str = "https://huggingface.co",
    write: bool = True,
    warn: Callable[[str], None] | None = None,
    templates_dir: Path | None = None,
) -> CardsResult:
    """Render (and by default write, atomically) README.md for every variant of a build.

    ``template``: a Jinja2 file overriding the recipe's ``card.template`` and the default.
    ``templates_dir``: a catalog's templates folder; its ``card/*.md.j2`` replace the built-in ones.
    ``recipes_dir``: the catalog's recipes (sibling parents, newer card text, relative paths).
    ``recipe_dir``: where the recipe's relative paths (evaluations, template) start; default:
    the catalog recipe's folder when found, else the build directory.
    ``published``: the version's tag date once published; default the build date.
    ``endpoint``/``token``/``cache_dir``/``fetcher``: how parents' cards are read (default:
    huggingface_hub with HF_ENDPOINT). ``strict``: any lineage gap is an error.
    """
    build_dir = Path(build_dir)
    warnings: list[str] = []

    def _warn(text: str) -> None:
        if text not in warnings:
            warnings.append(text)
            if warn is not None:
                warn(text)

    manifest = load_manifest(build_dir)
    if manifest.merge_method == QUANTIZE_ONLY:  # a `publisher quantize` output: one source, no merge
        return _quantization_card(build_dir, manifest, published, link_base, templates_dir, write)
    recipe_path = build_dir / RECIPE_FILE
    if not recipe_path.is_file():
        raise CardError("recipe.yaml is missing from the build", where=str(build_dir), fix="rebuild")
    build_recipe = load_recipe(recipe_path)
    siblings = SiblingRecipes(recipes_dir, _warn)
    loaded, found_dir = _merged_card_recipe(build_recipe, siblings, _warn)
    base_dir = Path(recipe_dir) if recipe_dir is not None else (found_dir or build_dir)
    card = loaded.recipe.card

    try:
        merged = manifest.variant("merged")
    except KeyError:
        raise CardError("manifest.json has no 'merged' variant", where=str(build_dir / "manifest.json")) from None
    merged_folder = build_dir / merged.folder
    merged_facts = model_facts(merged_folder, context_length=card.context_length)

    resolver = LineageResolver(
        fetcher=fetcher if fetcher is not None else HubFetcher(endpoint=endpoint, token=token, cache_dir=cache_dir),
        siblings=siblings,
        max_depth=max_depth,
        warn=_warn,
    )
    lineage = _merged_lineage(build_dir, manifest, merged, resolver, _warn)
    report, lic_name, lic_link = _checked_license(loaded, lineage, strict=strict, warn=_warn)

    eval_rows = evals.load_evaluations(card.evaluations, base_dir, card.evaluation_source)
    method = REGISTRY.get(manifest.merge_method)
    tables: list[params.ParamTable] = []
    if method is not None:
        names = _tensor_names(merged_folder)
        layers = merged_facts.architecture.layers or 0
        tables = params.parameter_tables(loaded.recipe.merge, method, names, layers)
    _check_assumed(loaded, tables)

    published_date = published or default_published(build_dir)
    ctx = BuildContext(
        manifest=manifest,
        recipe=loaded,
        base_dir=base_dir,
        build_dir=build_dir,
        lineage=lineage,
        license=report,
        license_name=lic_name,
        license_link=lic_link,
        eval_rows=eval_rows,
        merged_facts=merged_facts,
        param_tables=tables,
        published=published_date,
        warnings=warnings,
    )

    env, tpl_name = _card_template(template, card.template, base_dir, templates_dir)

    cards = [
        _render_variant(ctx, env, tpl_name, variant, merged, build_dir, link_base)
        for variant in [merged, *[v for v in manifest.variants if v.name != "merged"]]
    ]

    for w in resolver.warnings:
        _warn(w)
    if strict and warnings:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        raise CardError(f"strict: {warnings[0]}{more}", where=str(build_dir), fix="fix the ancestry, or drop --strict")

    result = CardsResult(cards=cards, warnings=warnings, license=report, lineage=lineage)
    if write:
        for c in cards:
            result.written.append(write_atomic(c.path, c.text))
            result.written += write_eval_results(c.folder, c.extra_files)
        settings.remember(build_dir, settings.CardSettings(
            strict=strict, template=_abs(template), recipes_dir=_abs(recipes_dir), recipe_dir=_abs(recipe_dir),
            templates_dir=_abs(templates_dir), published=published, max_depth=max_depth, link_base=link_base,
            endpoint=endpoint if fetcher is None else getattr(fetcher, "endpoint", None),
            cache_dir=_abs(cache_dir if fetcher is None else getattr(fetcher, "cache_dir", None)),
            cards_dir=_abs(fetcher.root) if isinstance(fetcher, FolderFetcher) else None,
        ))
    return result


def _quantization_card(
    build_dir: Path, manifest: Manifest, published: date | None, link_base: str, templates_dir: Path | None, write: bool
) -> CardsResult:
    from publisher.card.quantized import render_quantized_card

    text, strip, facts = render_quantized_card(
        build_dir, manifest, published=published, link_base=link_base, templates_dir=templates_dir
    )
    v = manifest.variants[0]
    card = RenderedCard(v.name, v.repo_id, build_dir, text, strip, facts)
    result = CardsResult(cards=[card], warnings=[])
    if write:
        result.written.append(write_atomic(card.path, text))
    return result


def _abs(path: Path | None) -> str | None:
    return str(Path(path).absolute()) if path is not None else None


def write_eval_results(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write ``.eval_results/*.yaml`` (atomically each) and drop the ones no longer produced."""
    out_dir = folder / evals.EVAL_RESULTS_DIR
    written = []
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_atomic(path, text))
    if out_dir.is_dir():
        for stale in sorted(out_dir.glob("*.yaml")):
            if stale not in written:
                stale.unlink()
        if not any(out_dir.iterdir()):
            out_dir.rmdir()
    return written


def _check_assumed(loaded: LoadedRecipe, tables: list[params.ParamTable]) -> None:
    """``card.assumed`` may only name parameters the merge has (else the card would mislabel)."""
    known = {t.name for t in tables}
    for name in loaded.recipe.card.assumed:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise CardError(
                f"card.assumed.{name} is not a parameter of this merge (its parameters: {listed})",
                where=f"{loaded.path}: card.assumed",
                fix="name a parameter of merge.parameters or of a model's parameters",
            )


def _merged_lineage(
    build_dir: Path,
    manifest: Manifest, merged: Variant, resolver: LineageResolver, warn: Callable[[str], None]
) -> Lineage:
    """The merged model's family tree: its inputs from the manifest, their ancestors from cards."""
    root_label = merged.repo_id or manifest.recipe_name or "this model"
    root = LineageNode(
        ref=root_label,
        repo_id=merged.repo_id,
        revision=None,
        source="build",
        status="ok",
        relation="merge",
        method=manifest.merge_method,
        is_root=True,
    )
    for inp in manifest.inputs:
        local = parent_folder(build_dir, inp)
        use_local = local is not None and (inp.kind == "local" or (local / README).is_file())
        if inp.kind == "local" and not inp.repo_id:
            warn(f"parent {inp.ref} is a local folder: it cannot be listed in base_model")
        base_ref = base_of(inp.ref) if inp.lora else inp.ref
        path = [root.label, inp.ref] if inp.lora else [root.label]
        node = resolver.node(
            base_ref, repo_id=inp.repo_id, revision=inp.revision, local=local if use_local else None, path=path, depth=len(path)
        )
        if inp.lora:  # base + LoRA adapter: one parent whose own parents are the base and the adapter
            adapter = resolver.node(
                inp.lora.ref,
                repo_id=inp.lora.repo_id,
                revision=inp.lora.revision,
                local=None,
                path=path,
                depth=len(path),
            )
            node = LineageNode(
                ref=inp.ref, repo_id=None, revision=None, source="build", status="ok", relation="adapter", parents=[node, adapter]
            )
        root.parents.append(node)
    return Lineage(root, resolver.warnings)


def _checked_license(
    loaded: LoadedRecipe, lineage: Lineage, *, strict: bool, warn: Callable[[str], None]
) -> tuple[LicenseReport, str | None, str | None]:
    """(report, license_name, license_link): declared or derived, then checked over the ancestry."""
    card = loaded.recipe.card
    root = lineage.root
    lic, lic_name, lic_link = card.license, card.license_name, card.license_link
    derived: list[str] = []
    if lic is None:
        if lic_name or lic_link:
            raise CardError("card.license_name/license_link without card.license", where="card.license", fix="add license: other")
        try:
            lic, lic_name, lic_link, derived = derive_license(root)
        except LicenseError as e:
            if strict:
                raise
            # not guessed: the card says "unknown" (a Hub id) until the recipe declares one
            warn(f"{e.what}; the card says license: unknown (declare card.license)")
            lic, lic_name, lic_link, derived = "unknown", None, None, []
    for problem in license_problems(lic, lic_name, lic_link):
        raise CardError(problem, where=f"{loaded.path}: card.license", fix=None)
    report = check_licenses(lineage, lic, reason=card.license_reason, derived_from=derived)
    if card.license_reason and not report.conflicts:
        warn(f"card.license_reason is set, but no ancestor's license conflicts with {lic}")
    root.license, root.license_name, root.license_link = lic, lic_name, lic_link
    return report, lic_name, lic_link


def _card_template(
    template: Path | None, recipe_template: str | None, base_dir: Path, templates_dir: Path | None
) -> tuple[jinja2.Environment, str]:
    """The environment and template name: --template > card.template (relative to the recipe) > default."""
    if template is not None:
        tpl_path: Path | None = Path(template)
    elif recipe_template:
        tpl_path = base_dir / recipe_template
    else:
        tpl_path = None
    if tpl_path is not None and not tpl_path.is_file():
        raise CardError(f"template {tpl_path} not found", where="card.template", fix="give a path relative to the recipe")
    env = template_environment(tpl_path.resolve().parent if tpl_path else None, templates_dir)
    return env, (tpl_path.name if tpl_path else DEFAULT_TEMPLATE)


def _render_variant(
    ctx: BuildContext,
    env: jinja2.Environment,
    tpl_name: str,
    variant: Variant,
    merged: Variant,
    build_dir: Path,
    link_base: str,
) -> RenderedCard:
    """One variant's card: body from the template, front matter from ModelCardData, validated."""
    folder = build_dir / variant.folder
    context_length = ctx.recipe.recipe.card.context_length
    facts = ctx.merged_facts if variant is merged else model_facts(folder, context_length=context_length)
    context = model_context(ctx, variant, facts, merged, link_base)
    context["measured"] = measured_context(build_dir, variant.name)  # publisher.check's facts
    context["not_measured"] = unmeasured_reason(build_dir)  # or why it has none (a streaming build)
    data = front_matter(ctx, variant, facts, merged, context["model"]["name"])
    add_measured(data, build_dir, variant.name, context["model"]["name"])
    text = _card_text(data, render_template(env, tpl_name, context))
    # the same card at a fixed date: what the card says, whatever day it is rendered and
    # whatever day the gate measured its numbers (identity.py)
    fixed = model_context(dataclasses.replace(ctx, published=FIXED_DATE), variant, facts, merged, link_base)
    fixed["measured"] = measured_context(build_dir, variant.name, measured_on=FIXED_DATE)
    fixed["not_measured"] = context["not_measured"]
    fixed_data = front_matter(ctx, variant, facts, merged, context["model"]["name"])
    add_measured(fixed_data, build_dir, variant.name, context["model"]["name"], measured_on=FIXED_DATE)
    text = stamp(text, identity_of(_card_text(fixed_data, render_template(env, tpl_name, fixed))))
    where = str(folder / README)
    parsed = validate_card_text(text, where)
    if parsed.data.to_dict() != data.to_dict():
        raise CardError("the card's front matter does not read back as written", where=where)
    # the Hub's .eval_results/ describe the model they are in: the merged model's own numbers
    extra = evals.eval_result_files(ctx.eval_rows) if variant is merged else {}
    return RenderedCard(variant.name, variant.repo_id, folder, text, card_strip(ctx, facts, variant), facts, extra)


def _card_text(data: Any, body: str) -> str:
    text = f"---\n{data.to_yaml()}\n---\n\n{body.lstrip(chr(10))}"
    return text if text.endswith("\n") else text + "\n"


def write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def build_strips(build_dir: Path, *, published: date | None = None) -> dict[str, Strip]:
    """The catalog strip of each variant of a build, without lineage or rendering.

    The license is the recipe's declared one (``None`` when it is derived: render the
    cards, or read the published card's front matter, for the derived value).
    """
    build_dir = Path(build_dir)
    manifest = load_manifest(build_dir)
    recipe = load_recipe(build_dir / RECIPE_FILE).recipe
    out: dict[str, Strip] = {}
    for v in manifest.variants:
        facts = model_facts(build_dir / v.folder, context_length=recipe.card.context_length)
        repo = v.repo_id or manifest.recipe_name
        out[v.name] = strip_of(
            facts,
            license=recipe.card.license,
            published=published or default_published(build_dir),
            version=manifest.recipe_version,
            creator=recipe.card.creator or (repo.split("/")[0] if repo and "/" in repo else None),
            original_published=recipe.card.original_published,
        )
    return out

