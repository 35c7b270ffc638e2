"""Every section of a recipe checked before any parent is read: card, quantize, publish.

``load_recipe`` checks the merge (``recipe_checks.py``: methods, parameters, ranges). What the other sections ask
for used to be checked only where it is used (the card after the merge, inside the build's
work folder, naming its internal copy of the recipe). ``plan`` and ``build`` call
``check_sections`` on the user's file first, so a typo fails in a second with the user's
``file:line``, before a parent is resolved or a tensor read.
"""

from __future__ import annotations

from pathlib import Path

from publisher.errors import CardError, QuantizeError, RecipeError
from publisher.recipe import LoadedRecipe
from publisher.suggest import did_you_mean


def check_sections(loaded: LoadedRecipe) -> None:
    """Raise the first problem of the card, quantize and publish sections, with file:line."""
    check_card(loaded)
    check_quantize(loaded)
    check_publish(loaded)


def _at(loaded: LoadedRecipe, *loc: str | int) -> str:
    """``file:line: dotted.field`` of a field outside the merge config."""
    return f"{loaded.where(*loc, merge=False)}: {'.'.join(map(str, loc))}"


def check_card(loaded: LoadedRecipe) -> None:
    from publisher.card.licenses import HUB_LICENSES, license_problems

    card = loaded.recipe.card
    if card.license is None:
        if card.license_name or card.license_link:
            field = "license_name" if card.license_name else "license_link"
            raise CardError(f"card.{field} without card.license", where=_at(loaded, "card", field), fix="add license: other")
    else:
        problems = license_problems(card.license, card.license_name, card.license_link)
        if problems:
            hint = did_you_mean(card.license, list(HUB_LICENSES)) if card.license not in HUB_LICENSES else None
            raise CardError(problems[0] + (f" ({hint})" if hint else ""), where=_at(loaded, "card", "license"))
    _check_languages(loaded)
    for i, tag in enumerate(card.tags):
        if not tag.strip() or any(c in tag for c in "\n\r\t"):
            raise CardError(f"tag {tag!r} is not a one-line string", where=_at(loaded, "card", "tags", i))
    base = loaded.path.parent
    if card.template:
        _check_template(loaded, base / card.template)
    if isinstance(card.evaluations, str):
        from publisher.card.evals import load_evaluations

        try:
            load_evaluations(card.evaluations, base)
        except CardError as e:
            where = _at(loaded, "card", "evaluations") if e.where == "card.evaluations" else e.where
            raise CardError(e.what, where=where, fix=e.fix) from None


def _check_languages(loaded: LoadedRecipe) -> None:
    from publisher.card.validate import LANGUAGE_SPECIAL

    langs = loaded.recipe.card.language
    for i, lang in enumerate([langs] if isinstance(langs, str) else (langs or [])):
        ok = lang in LANGUAGE_SPECIAL or (lang.isascii() and lang.isalpha() and lang.islower() and 2 <= len(lang) <= 3)
        if not ok:
            loc = ("card", "language") if isinstance(langs, str) else ("card", "language", i)
            raise CardError(
                f"language {lang!r} is not an ISO 639-1/2/3 code", where=_at(loaded, *loc),
                fix="use codes like en, fr, deu, or 'code' / 'multilingual'",
            )


def _check_template(loaded: LoadedRecipe, path: Path) -> None:
    import jinja2

    if not path.is_file():
        raise CardError(f"template {path} does not exist", where=_at(loaded, "card", "template"),
                        fix="give a path relative to the recipe's folder")
    try:
        jinja2.Environment().parse(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as e:
        raise CardError(f"template syntax error: {e.message}", where=f"{path}:{e.lineno}") from None
    except UnicodeDecodeError:
        raise CardError("template is not UTF-8 text", where=str(path)) from None


def check_quantize(loaded: LoadedRecipe) -> None:
    from publisher.quantize.schemes import SCHEMES, get_scheme

    seen: dict[str, int] = {}
    for i, spec in enumerate(loaded.recipe.quantize):
        try:
            scheme = get_scheme(spec.scheme)
        except QuantizeError as e:
            hint = did_you_mean(spec.scheme, list(SCHEMES))
            raise QuantizeError(
                e.what + (f" ({hint})" if hint else ""), where=_at(loaded, "quantize", i, "scheme"), fix=e.fix
            ) from None
        name = spec.suffix or scheme.suffix
        loc = ("quantize", i, "suffix") if spec.suffix else ("quantize", i)
        if not name or "/" in name or name.startswith(".") or name.strip() != name:
            raise QuantizeError(f"suffix {name!r} is not a usable folder/repo suffix", where=_at(loaded, *loc))
        if name in seen or name == "merged":
            raise QuantizeError(
                f"two quantize entries produce the variant {name!r}", where=_at(loaded, *loc),
                fix="give one of them a different suffix",
            )
        seen[name] = i


def check_publish(loaded: LoadedRecipe) -> None:
    """A recipe that says how to publish must say where to (name) and what (version)."""
    if "publish" not in (loaded.source.data or {}):
        return
    for field, example in (("name", "name: namespace/model"), ("version", "version: 1.0.0")):
        if getattr(loaded.recipe, field) is None:
            raise RecipeError(
                f"a publish section needs the recipe's {field}", where=_at(loaded, "publish"), fix=f"add {example}"
            )


def reference_where(loaded: LoadedRecipe, ref: str) -> str:
    """``file:line`` where the recipe first names the model ``ref`` (errors about that parent)."""
    from publisher.recipe_checks import model_ref_locations

    for loc, named in model_ref_locations(loaded.merge):
        if named == ref:
            return loaded.where(*loc)
    return str(loaded.path)
