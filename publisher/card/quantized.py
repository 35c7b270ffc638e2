"""The card of a standalone quantization (``publisher quantize`` output): one source, no merge.

Facts come from the files, as for a build; the source is named as the manifest names it (a
Hub repo at its commit, or a local folder by its name) and goes into ``base_model`` with
``base_model_relation: quantized`` when it is a Hub repo; the license is the source card's.
"""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path
from typing import Any

from publisher import __version__
from publisher.card.facts import model_facts, strip_of
from publisher.card.identity import FIXED_DATE, identity_of, stamp
from publisher.card.origin import parse_card
from publisher.card.provenance import default_published, install_line, parent_folder
from publisher.card.templates import render_template, template_environment
from publisher.card.validate import validate_card_text
from publisher.errors import CardError
from publisher.manifest import Manifest

TEMPLATE = "card/quantized.md.j2"
README = "README.md"


def _source_license(build_dir: Path, manifest: Manifest) -> str | None:
    inp = manifest.inputs[0]
    folder = parent_folder(build_dir, inp)
    readme = folder / README if folder is not None else None
    if readme is None or not readme.is_file():
        return None
    return parse_card(readme.read_text(encoding="utf-8-sig")).license


def _commands(manifest: Manifest, out_name: str) -> list[str]:
    src = manifest.quantized_from
    assert src is not None
    variant = manifest.variants[0]
    q = variant.quantization or {}
    local_dir = (src.repo_id or src.ref).split("/")[-1]
    lines = [install_line(manifest.tool)]
    if src.repo_id:
        rev = f" --revision {src.revision}" if src.revision else ""
        lines.append(f"hf download {src.repo_id}{rev} --local-dir {shlex.quote(local_dir)}")
    cmd = f"publisher quantize {shlex.quote(local_dir)} --scheme {q.get('scheme', 'fp8-dynamic')}"
    cmd += "".join(f" --ignore {shlex.quote(str(i))}" for i in q.get("ignore") or [])
    cmd += f" --out {shlex.quote(out_name)}"
    if variant.repo_id:
        cmd += f" --name {variant.repo_id}"
    if manifest.recipe_version:
        cmd += f" --version {manifest.recipe_version}"
    return [*lines, cmd]


def _context(build_dir: Path, manifest: Manifest, published: date, license: str, from_source: bool,
             link_base: str) -> dict[str, Any]:
    from publisher.card.context import hub_url

    variant = manifest.variants[0]
    src = manifest.quantized_from
    assert src is not None
    facts = model_facts(build_dir)
    name = variant.repo_id or f"{(src.repo_id or src.ref).split('/')[-1]}-{variant.name}"
    strip = strip_of(facts, license=license, published=published, version=manifest.recipe_version)
    return {
        "model": {"name": name, "repo_id": variant.repo_id, "version": manifest.recipe_version},
        "source": {"ref": src.ref, "repo_id": src.repo_id, "revision": src.revision, "files": src.files,
                   "dtype": _source_dtype(build_dir, manifest)},
        "strip": strip,
        "facts": facts,
        "quantization": facts.quantization,
        "license": {"id": license, "from_source": from_source},
        "reproduce": {"command": "\n".join(_commands(manifest, name.split("/")[-1]))},
        "provenance": {"tool": manifest.tool, "card_tool": f"publisher {__version__}"},
        "hub_url": hub_url(link_base),
    }


def _source_dtype(build_dir: Path, manifest: Manifest) -> str:
    """The source's dominant dtype: what the ignored modules (and the scales) keep."""
    facts = model_facts(build_dir)
    others = {k: v for k, v in facts.dtypes.items() if not k.startswith("F8")}
    return max(others, key=lambda k: others[k]) if others else "unknown"


def render_quantized_card(
    build_dir: Path, manifest: Manifest, *, published: date | None, link_base: str, templates_dir: Path | None
) -> tuple[str, Any, Any]:
    """(card text, strip, facts) of a quantize output folder."""
    from huggingface_hub import ModelCardData

    if manifest.quantized_from is None or len(manifest.variants) != 1:
        raise CardError("manifest.json is not a quantization's", where=str(build_dir / "manifest.json"))
    declared = _source_license(build_dir, manifest)
    lic = declared or "unknown"
    env = template_environment(None, templates_dir)
    day = published or default_published(build_dir)
    context = _context(build_dir, manifest, day, lic, declared is not None, link_base)
    facts, q, src = context["facts"], context["quantization"], manifest.quantized_from
    tags = ["quantized", *([q.label.lower(), q.scheme] if q else []), *(["compressed-tensors"] if q and q.method == "compressed-tensors" else [])]
    relation: dict[str, Any] = {"base_model_relation": "quantized"} if src.repo_id else {}
    data = ModelCardData(
        base_model=src.repo_id, library_name="transformers", license=lic, pipeline_tag=facts.task, tags=tags, **relation
    )

    def text_of(ctx: dict[str, Any]) -> str:
        body = render_template(env, TEMPLATE, ctx)
        text = f"---\n{data.to_yaml()}\n---\n\n{body.lstrip(chr(10))}"
        return text if text.endswith("\n") else text + "\n"

    fixed = _context(build_dir, manifest, FIXED_DATE, lic, declared is not None, link_base)
    text = stamp(text_of(context), identity_of(text_of(fixed)))
    validate_card_text(text, str(build_dir / README))
    return text, context["strip"], facts
