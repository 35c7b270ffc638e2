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
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from publisher import __version__
from publisher.card import evals, params
from publisher.card.facts import ModelFacts, Strip, model_facts, strip_of
from publisher.card.identity import FIXED_DATE, identity_of, stamp
from publisher.card.licenses import (
    class_descriptions,
    license_class,
    license_problems,
    license_title,
    license_url,
)
from publisher.card.lineage import (
    DEFAULT_MAX_DEPTH,
    CardFetcher,
    HubFetcher,
    LicenseReport,
    Lineage,
    LineageNode,
    LineageResolver,
    SiblingRecipes,
    check_licenses,
    derive_license,
)
from publisher.card.provenance import (
    default_published,
    parent_folder,
    quantized_from_revision,
    reproduce_context,
)
from publisher.card.text import finalize as md_finalize
from publisher.card.text import (
    md_cell,
    md_code,
    md_fenced,
    md_inline,
    md_paragraphs,
    mermaid_label,
    py_str,
)
from publisher.errors import CardError, LicenseError, PublisherError
from publisher.manifest import RECIPE_FILE, Manifest, Variant, load_manifest
from publisher.merge.methods import REGISTRY
from publisher.recipe import LoadedRecipe, load_recipe
from publisher.tensors import ModelFiles

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
DEFAULT_TEMPLATE = "card/default.md.j2"
README = "README.md"
RELATIONS = ("merge", "quantized", "finetune", "adapter")
LANGUAGE_SPECIAL = ("code", "multilingual")


@dataclass
class RenderedCard:
    variant: str  # "merged" or a quantize suffix such as "FP8"
    repo_id: str | None
    folder: Path
    text: str
    strip: Strip
    facts: ModelFacts

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


# ----------------------------------------------------------------------------- templates


def template_environment(user_dir: Path | None = None, templates_dir: Path | None = None) -> jinja2.Environment:
    """Strict, Markdown-escaping Jinja2: the user's folder, the catalog's templates, the built-in ones.

    A catalog's ``templates/card/default.md.j2`` replaces the built-in default of that name; it
    can still extend the original as ``builtin/card/default.md.j2``.
    """
    loaders: list[jinja2.BaseLoader] = []
    if user_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(user_dir)))
    if templates_dir is not None and Path(templates_dir).resolve() != TEMPLATES_DIR:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES_DIR)))
    loaders.append(jinja2.PrefixLoader({"builtin": jinja2.FileSystemLoader(str(TEMPLATES_DIR))}))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # so macro output is Markup; finalize escapes Markdown, not HTML only
        finalize=md_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=lambda v: jinja2.utils.markupsafe.Markup(md_inline(v)),
        paragraphs=md_paragraphs,
        code=md_code,
        fenced=md_fenced,
        cell=lambda v: jinja2.utils.markupsafe.Markup(md_cell(v)),
        py=py_str,
        mermaid=mermaid_label,
        join_names=_join_names,
        thousands=lambda n: f"{int(n):,}",
        gb=human_bytes,
        url=url_filter,
    )
    return env


def human_bytes(n: object) -> str:
    """Decimal units, as the Hub shows file sizes: 14.5 GB, 83.2 kB."""
    v = float(n)  # type: ignore[arg-type]
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= div:
            return f"{v / div:.1f} {unit}"
    return f"{int(v)} B"


def url_filter(value: object) -> Any:
    """A URL safe to put inside ``(...)`` of a Markdown link."""
    return jinja2.utils.markupsafe.Markup(quote(str(value), safe=":/?#@!$&*+,;=%-._~"))


def _join_names(items: list[Any], word: str = "and") -> jinja2.utils.markupsafe.Markup:
    """'A', 'A and B', 'A, B and C' — each item escaped unless already Markup."""
    Markup = jinja2.utils.markupsafe.Markup
    parts = [str(i) if isinstance(i, Markup) else md_inline(i) for i in items]
    if len(parts) <= 1:
        return Markup("".join(parts))
    return Markup(f"{', '.join(parts[:-1])} {word} {parts[-1]}")


def _template_location(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame in a rendering traceback."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fname = frame.f_code.co_filename
        if fname.endswith((".j2", ".jinja", ".jinja2", ".md", ".html")) or "/templates/" in fname:
            where = f"{fname}:{lineno}"
    return where


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateSyntaxError as e:
        raise CardError(f"template syntax error: {e.message}", where=f"{e.filename or e.name}:{e.lineno}") from None
    except jinja2.TemplateNotFound as e:
        raise CardError(f"template not found: {e.name}", where=name, fix="check the template path") from None
    except jinja2.UndefinedError as e:
        raise CardError(
            f"template uses an undefined variable ({e.message})",
            where=_template_location(e) or name,
            fix="see templates/card/default.md.j2 for the variables a card template gets",
        ) from None
    except PublisherError:
        raise
    except Exception as e:
        raise CardError(f"template failed: {type(e).__name__}: {e}", where=_template_location(e) or name) from None


# ----------------------------------------------------------------------------- validation


def validate_card_text(text: str, where: str) -> Any:
    """Parse and check a card the way the Hub would, offline; returns the ModelCard.

    huggingface_hub parses the front matter (and the model-index); we check what it leaves
    to the Hub: the license id, base_model repo ids, base_model_relation, language codes.
    """
    from huggingface_hub import ModelCard
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not text.startswith("---\n"):
        raise CardError("the card does not start with a YAML front matter block", where=where)
    try:
        card = ModelCard(text)
    except ValueError as e:
        raise CardError(f"front matter rejected by huggingface_hub: {' '.join(str(e).split())[:300]}", where=where) from None
    data = card.data.to_dict()
    for problem in license_problems(data.get("license"), data.get("license_name"), data.get("license_link")):
        raise CardError(problem, where=f"{where}: license")
    bases = data.get("base_model")
    for repo in [bases] if isinstance(bases, str) else (bases or []):
        try:
            if not isinstance(repo, str):
                raise HFValidationError(f"{repo!r} is not a string")
            validate_repo_id(repo)
            if "/" not in repo:
                raise HFValidationError("a base model must be 'namespace/name'")
        except HFValidationError as e:
            raise CardError(f"base_model {repo!r} is not a valid repo id ({e})", where=f"{where}: base_model") from None
    relation = data.get("base_model_relation")
    if relation is not None and relation not in RELATIONS:
        raise CardError(f"base_model_relation {relation!r} is not one of {', '.join(RELATIONS)}", where=where)
    if relation is not None and not bases:
        raise CardError("base_model_relation without base_model", where=where)
    langs = data.get("language")
    for lang in [langs] if isinstance(langs, str) else (langs or []):
        if not (isinstance(lang, str) and (lang in LANGUAGE_SPECIAL or (lang.isascii() and lang.isalpha() and lang.islower() and 2 <= len(lang) <= 3))):
            raise CardError(
                f"language {lang!r} is not an ISO 639-1/2/3 code", where=f"{where}: language",
                fix="use codes like en, fr, deu, or 'code' / 'multilingual'",
            )
    for tag in data.get("tags") or []:
        if not isinstance(tag, str) or not tag.strip() or any(c in tag for c in "\n\r\t"):
            raise CardError(f"tag {tag!r} is not a one-line string", where=f"{where}: tags")
    return card


# ----------------------------------------------------------------------------- context


def _hub_url(link_base: str) -> Callable[[str], Any]:
    base = link_base.rstrip("/")

    def url(repo_id: str) -> Any:
        return jinja2.utils.markupsafe.Markup(f"{base}/{quote(repo_id, safe='/')}")

    return url


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


@dataclass
class _BuildContext:
    manifest: Manifest
    recipe: LoadedRecipe
    base_dir: Path
    build_dir: Path
    lineage: Lineage
    license: LicenseReport
    license_name: str | None
    license_link: str | None
    eval_rows: list[evals.EvalRow]
    merged_facts: ModelFacts
    param_tables: list[params.ParamTable]
    published: date
    warnings: list[str]


def _model_context(
    ctx: _BuildContext,
    variant: Variant,
    facts: ModelFacts,
    merged: Variant,
    link_base: str,
) -> dict[str, Any]:
    m = ctx.manifest
    r = ctx.recipe.recipe
    card = r.card
    is_quant = variant.name != "merged"
    method = REGISTRY.get(m.merge_method)
    merged_root = ctx.lineage.root
    if is_quant:
        root = LineageNode(
            ref=variant.repo_id or f"{merged_root.label}-{variant.name}",
            repo_id=variant.repo_id,
            revision=None,
            source="build",
            status="ok",
            license=merged_root.license,
            license_name=merged_root.license_name,
            license_link=merged_root.license_link,
            relation="quantized",
            method=None,
            parents=[merged_root],
            is_root=True,
        )
        lineage = Lineage(root, ctx.lineage.warnings)
    else:
        lineage = ctx.lineage
    nodes, edges = lineage.graph()
    strip = strip_of(facts, license=ctx.license.declared, published=ctx.published, version=m.recipe_version)
    parents = [n for n in merged_root.parents]
    base = r.merge.base_model
    comparisons = evals.comparison_table(ctx.eval_rows, list(card.comparisons)) if ctx.eval_rows or card.comparisons else None
    model_name = variant.repo_id or f"{m.recipe_name or 'model'}{'' if not is_quant else '-' + variant.name}"
    lic_id = ctx.license.declared
    context: dict[str, Any] = {
        "model": {
            "repo_id": variant.repo_id,
            "name": model_name,
            "short_name": model_name.split("/")[-1],
            "namespace": model_name.split("/")[0] if "/" in model_name else None,
            "variant": variant.name,
            "is_quantized": is_quant,
            "version": m.recipe_version,
            "published": strip.published_text,
            "published_iso": ctx.published.isoformat(),
        },
        "merged": {
            "repo_id": merged.repo_id,
            "revision": quantized_from_revision(ctx.build_dir, variant) if is_quant else None,
            "name": merged.repo_id or m.recipe_name or "the merged model",
            "facts": ctx.merged_facts,
        },
        "strip": strip,
        "facts": facts,
        "quantization": facts.quantization,
        "text": {
            "summary": card.summary,
            "description": card.description,
            "use_cases": list(card.use_cases),
            "limitations": list(card.limitations),
        },
        "merge": {
            "method": m.merge_method,
            "pretty": (method.pretty_name if method and method.pretty_name else m.merge_method),
            "reference_url": method.reference_url if method and method.reference_url else None,
            "base": base,
            "parents": parents,
            "others": [p for p in parents if p.ref != base and p.repo_id != base],
            "dtype": r.merge.dtype,
            "out_dtype": m.out_dtype,
            "compute_dtype": m.compute_dtype,
            "tables": ctx.param_tables,
            "slices": [
                {"sources": [(s.model, f"{s.layer_range[0]}–{s.layer_range[1] - 1}") for s in sl.sources]}
                for sl in r.merge.slices or []
            ],
            "tokenizer_source": r.merge.tokenizer_source,
            "known_method": method is not None,
        },
        "lineage": {
            "rows": lineage.rows(),
            "nodes": nodes,
            "edges": edges,
            "warnings": list(ctx.lineage.warnings),
        },
        "license": {
            "id": lic_id,
            "title": license_title(lic_id) if lic_id != "other" else (ctx.license_name or "other"),
            "url": ctx.license_link if lic_id == "other" else license_url(lic_id),
            "class": license_class(lic_id),
            "class_text": class_descriptions().get(license_class(lic_id), ""),
            "declared": card.license is not None,
            "derived_from": ctx.license.derived_from,
            "reason": card.license_reason,
            "conflicts": ctx.license.conflicts,
            "unchecked": ctx.license.unchecked,
        },
        "evaluation": {
            "rows": ctx.eval_rows,
            "comparisons": comparisons,
            "measured_on": merged.repo_id if is_quant else None,
        },
        "reproduce": reproduce_context(m, ctx.recipe.text, model_name),
        "provenance": {
            "inputs": m.inputs,
            "seed": m.seed,
            "tool": m.tool,
            "card_tool": f"publisher {__version__}",
            "recipe_sha256": m.recipe_sha256,
            "random_method": bool(method and method.random),
        },
        "hub_url": _hub_url(link_base),
        "format_metric": evals.format_metric,
    }
    return context


def _front_matter(ctx: _BuildContext, variant: Variant, facts: ModelFacts, merged: Variant, model_name: str) -> Any:
    from huggingface_hub import ModelCardData

    r = ctx.recipe.recipe
    card = r.card
    is_quant = variant.name != "merged"
    tags: list[str] = ["merge", ctx.manifest.merge_method]
    if facts.architecture.model_type:
        tags.append(facts.architecture.model_type)
    if is_quant and facts.quantization:
        tags += [facts.quantization.label.lower(), facts.quantization.scheme]
        if facts.quantization.method == "compressed-tensors":
            tags.append("compressed-tensors")
    tags += list(card.tags)
    if is_quant:
        base_model: str | list[str] | None = merged.repo_id
        relation = "quantized" if merged.repo_id else None
        results = None
    else:
        repos = [p.repo_id for p in ctx.lineage.root.parents if p.repo_id]
        base_model = repos or None
        relation = "merge" if repos else None
        results = evals.eval_results(ctx.eval_rows) if ctx.eval_rows else None
    kwargs: dict[str, Any] = {}
    if relation:
        kwargs["base_model_relation"] = relation
    return ModelCardData(
        base_model=base_model,
        datasets=list(card.datasets) or None,
        language=card.language,
        library_name="transformers",
        license=ctx.license.declared,
        license_name=ctx.license_name,
        license_link=ctx.license_link,
        pipeline_tag=facts.task,
        tags=tags,
        eval_results=results,
        model_name=model_name if results else None,
        **kwargs,
    )


# ----------------------------------------------------------------------------- entry point


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

    # lineage of the merged model
    resolver = LineageResolver(
        fetcher=fetcher if fetcher is not None else HubFetcher(endpoint=endpoint, token=token, cache_dir=cache_dir),
        siblings=siblings,
        max_depth=max_depth,
        warn=_warn,
    )
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
            _warn(f"parent {inp.ref} is a local folder: it cannot be listed in base_model")
        root.parents.append(
            resolver.node(
                inp.ref,
                repo_id=inp.repo_id,
                revision=inp.revision,
                local=local if use_local else None,
                path=[root.label],
                depth=1,
            )
        )
    lineage = Lineage(root, resolver.warnings)

    # license: declared or derived, then checked over the whole ancestry
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
            _warn(f"{e.what}; the card says license: unknown (declare card.license)")
            lic, lic_name, lic_link, derived = "unknown", None, None, []
    for problem in license_problems(lic, lic_name, lic_link):
        raise CardError(problem, where=f"{loaded.path}: card.license", fix=None)
    report = check_licenses(lineage, lic, reason=card.license_reason, derived_from=derived)
    if card.license_reason and not report.conflicts:
        _warn(f"card.license_reason is set, but no ancestor's license conflicts with {lic}")
    root.license, root.license_name, root.license_link = lic, lic_name, lic_link

    eval_rows = evals.load_evaluations(card.evaluations, base_dir)
    method = REGISTRY.get(manifest.merge_method)
    tables: list[params.ParamTable] = []
    if method is not None:
        names = _tensor_names(merged_folder)
        layers = merged_facts.architecture.layers or 0
        tables = params.parameter_tables(loaded.recipe.merge, method, names, layers)

    published_date = published or default_published(build_dir)
    ctx = _BuildContext(
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

    # the template: --template > card.template (relative to the recipe) > default
    if template is not None:
        tpl_path: Path | None = Path(template)
    elif card.template:
        tpl_path = base_dir / card.template
    else:
        tpl_path = None
    if tpl_path is not None and not tpl_path.is_file():
        raise CardError(f"template {tpl_path} not found", where="card.template", fix="give a path relative to the recipe")
    env = template_environment(tpl_path.resolve().parent if tpl_path else None, templates_dir)
    tpl_name = tpl_path.name if tpl_path else DEFAULT_TEMPLATE

    cards: list[RenderedCard] = []
    for variant in [merged, *[v for v in manifest.variants if v.name != "merged"]]:
        folder = build_dir / variant.folder
        facts = merged_facts if variant is merged else model_facts(folder, context_length=card.context_length)
        context = _model_context(ctx, variant, facts, merged, link_base)
        data = _front_matter(ctx, variant, facts, merged, context["model"]["name"])
        text = _card_text(data, render_template(env, tpl_name, context))
        fixed = dataclasses.replace(ctx, published=FIXED_DATE)
        identity = identity_of(_card_text(data, render_template(env, tpl_name, _model_context(fixed, variant, facts, merged, link_base))))
        text = stamp(text, identity)
        where = str(folder / README)
        parsed = validate_card_text(text, where)
        if parsed.data.to_dict() != data.to_dict():
            raise CardError("the card's front matter does not read back as written", where=where)
        strip = strip_of(facts, license=lic, published=published_date, version=manifest.recipe_version)
        cards.append(RenderedCard(variant.name, variant.repo_id, folder, text, strip, facts))

    for w in resolver.warnings:
        _warn(w)
    if strict and warnings:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        raise CardError(f"strict: {warnings[0]}{more}", where=str(build_dir), fix="fix the ancestry, or drop --strict")

    result = CardsResult(cards=cards, warnings=warnings, license=report, lineage=lineage)
    if write:
        for c in cards:
            result.written.append(write_atomic(c.path, c.text))
    return result


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
        out[v.name] = strip_of(
            facts,
            license=recipe.card.license,
            published=published or default_published(build_dir),
            version=manifest.recipe_version,
        )
    return out

