"""The license ids the Hub accepts, what kind of license each is, and when one cannot sit under another.

The list is data (``publisher/data/hub_licenses.json``, regenerated from hub-docs'
``repositories-licenses.md`` by ``scripts/hub_licenses.py``); the classification is ours and
exists for one question: may a model declared under license D have an ancestor under license A?
The answer is deliberately conservative (an automated check, not legal advice): a
permissive ancestor never conflicts; a non-permissive one conflicts unless D carries every
restriction A imposes (the same terms, non-commercial, share-alike); no-derivatives always
conflicts. A recipe overrides a conflict only by stating why (``card.license_reason``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

LicenseClass = Literal["permissive", "copyleft", "non-commercial", "restrictive-use", "other"]
CLASSES: tuple[LicenseClass, ...] = ("permissive", "copyleft", "non-commercial", "restrictive-use", "other")

# A custom license's id (``license_name``): a lowercase slug such as ``my-license-1.0``.
LICENSE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$")
# ``license_link``: an http(s) URL, or a file in the repo such as ``LICENSE`` / ``LICENSE.md``.
LICENSE_LINK_RE = re.compile(r"^(?:https?://[^\s<>\"'`]+|[A-Za-z0-9][A-Za-z0-9._/-]{0,254})$")


@dataclass(frozen=True)
class HubLicense:
    id: str
    name: str
    license_class: LicenseClass
    url: str | None = None


@cache
def hub_licenses() -> dict[str, HubLicense]:
    """Every license id the Hub accepts, in the Hub's order."""
    raw = json.loads(resources.files("publisher").joinpath("data/hub_licenses.json").read_text("utf-8"))
    out: dict[str, HubLicense] = {}
    for e in raw["licenses"]:
        cls = e["class"]
        if cls not in CLASSES:
            raise RuntimeError(f"hub_licenses.json: {e['id']} has unknown class {cls!r}")
        out[e["id"]] = HubLicense(e["id"], e["name"], cls, e.get("url"))
    return out


@cache
def class_descriptions() -> dict[str, str]:
    raw = json.loads(resources.files("publisher").joinpath("data/hub_licenses.json").read_text("utf-8"))
    return dict(raw["classes"])


def _ids() -> dict[str, str]:
    return {k: v.name for k, v in hub_licenses().items()}


# id -> full name, the same shape the local Hub's validate-yaml uses.
HUB_LICENSES: dict[str, str] = _ids()


def is_hub_license(license_id: str) -> bool:
    return license_id in HUB_LICENSES


def license_class(license_id: str | None) -> LicenseClass:
    """The class of a Hub license id; anything else (a typo, a custom id, None) is ``other``."""
    if license_id is None:
        return "other"
    lic = hub_licenses().get(license_id)
    return lic.license_class if lic else "other"


def license_title(license_id: str) -> str:
    lic = hub_licenses().get(license_id)
    return lic.name if lic else license_id


def license_url(license_id: str) -> str | None:
    lic = hub_licenses().get(license_id)
    return lic.url if lic else None


def license_problems(license_id: object, name: object = None, link: object = None) -> list[str]:
    """Why (license, license_name, license_link) would be rejected by the Hub; empty if fine."""
    if not isinstance(license_id, str):
        return [f"license must be a string, got {type(license_id).__name__}"]
    if license_id not in HUB_LICENSES:
        return [
            f"'{license_id}' is not a license id the Hub accepts; use one of "
            "https://hf.co/docs/hub/repositories-licenses, or 'other' with license_name and license_link"
        ]
    problems: list[str] = []
    if license_id == "other":
        if not isinstance(name, str) or not LICENSE_NAME_RE.match(name):
            problems.append("license 'other' needs license_name: a lowercase slug such as my-license-1.0")
        if not isinstance(link, str) or not LICENSE_LINK_RE.match(link):
            problems.append("license 'other' needs license_link: a URL or a file in the repo such as LICENSE")
    elif name is not None or link is not None:
        problems.append(f"license_name and license_link go with license 'other' only, not '{license_id}'")
    return problems


def _restrictions(license_id: str) -> frozenset[str]:
    """What a license obliges derivatives to keep; a declaration must carry all of them."""
    cls = license_class(license_id)
    flags: set[str] = set()
    if cls == "copyleft":
        flags.add("share-alike")
    elif cls == "non-commercial":
        flags.add("non-commercial use only")
        if not license_id.startswith("cc-"):
            flags.add(f"the {license_id} terms")  # a custom research license
    elif cls == "restrictive-use":
        flags.add(f"the {license_id} terms")
    if "-sa-" in license_id:
        flags.add("share-alike")
    return frozenset(flags)


def forbids_derivatives(license_id: str) -> bool:
    return "-nd-" in license_id


def conflict(declared: str, ancestor: str) -> str | None:
    """Why ``ancestor``'s license does not allow declaring ``declared``; None if it does.

    An ancestor of class ``other`` (unknown, custom, a family) is not judged here: the caller
    reports it as unchecked.
    """
    a_cls = license_class(ancestor)
    if a_cls in ("permissive", "other"):
        return None
    if forbids_derivatives(ancestor):
        return f"{ancestor} forbids derivative works, and a merge is one"
    if declared == ancestor:
        return None
    missing = _restrictions(ancestor) - _restrictions(declared)
    if not missing:
        return None
    d_cls = license_class(declared)
    return f"{ancestor} ({a_cls}) requires {', '.join(sorted(missing))}, which {declared} ({d_cls}) does not carry"
