"""The license check over a model's whole ancestry, and deriving a license its parents agree on.

An ancestor whose license conflicts with the declared one fails the card unless the recipe
acknowledges it (``card.license_reason``); an ancestor whose license is unknown or not
classifiable is listed as unchecked and warned about.
"""

from __future__ import annotations

from dataclasses import dataclass

from publisher.card.licenses import conflict, license_class
from publisher.card.lineage import Lineage, LineageNode
from publisher.errors import LicenseError


@dataclass
class LicenseFinding:
    node: LineageNode
    path: list[LineageNode]
    reason: str

    @property
    def path_text(self) -> str:
        return " → ".join(n.label for n in self.path)


@dataclass
class LicenseReport:
    declared: str
    derived_from: list[str]  # parents the license was derived from, when not declared
    conflicts: list[LicenseFinding]  # acknowledged ones (an unacknowledged one raises)
    unchecked: list[LicenseFinding]  # ancestors whose license is unknown or not classifiable
    acknowledged: str | None  # card.license_reason


def derive_license(root: LineageNode) -> tuple[str, str | None, str | None, list[str]]:
    """(license, license_name, license_link, parents it came from) when every parent agrees."""
    parents = root.parents
    lics = [(p.label, p.license, p.license_name, p.license_link) for p in parents]
    unknown = [label for label, lic, _, _ in lics if not lic]
    if not parents or unknown:
        who = ", ".join(unknown) or "no parent"
        raise LicenseError(
            f"cannot derive the license: the license of {who} is unknown",
            where="card.license",
            fix="declare card.license in the recipe",
        )
    distinct = {(lic, name, link) for _, lic, name, link in lics}
    if len(distinct) > 1:
        listed = ", ".join(f"{label}: {lic}" for label, lic, _, _ in lics)
        raise LicenseError(
            f"cannot derive the license: the parents' licenses differ ({listed})",
            where="card.license",
            fix="declare card.license in the recipe (and card.license_reason if an ancestor restricts it)",
        )
    lic, name, link = distinct.pop()
    assert lic is not None
    return lic, name, link, [label for label, _, _, _ in lics]


def check_licenses(lineage: Lineage, declared: str, *, reason: str | None, derived_from: list[str] | None = None) -> LicenseReport:
    """Every ancestor's license against the declared one; an unacknowledged conflict raises."""
    conflicts: list[LicenseFinding] = []
    unchecked: list[LicenseFinding] = []
    seen: set[tuple[str, ...]] = set()
    for path, node in lineage.walk():
        key = tuple(n.key for n in path)
        if key in seen:
            continue
        seen.add(key)
        if not node.known:
            continue
        if not node.license or license_class(node.license) == "other":
            why = "license unknown" if not node.license else f"license '{node.license}' cannot be checked automatically"
            if not any(u.node.key == node.key for u in unchecked):
                unchecked.append(LicenseFinding(node, path, why))
            continue
        problem = conflict(declared, node.license)
        if problem and not any(c.node.key == node.key for c in conflicts):
            conflicts.append(LicenseFinding(node, path, problem))
    if conflicts and not reason:
        c = conflicts[0]
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise LicenseError(
            f"license {declared} conflicts with ancestor {c.node.label} under {c.node.license}: {c.reason}; path {c.path_text}{more}",
            where="card.license",
            fix="declare a license that carries the ancestor's terms, or acknowledge it in card.license_reason",
        )
    for u in unchecked:
        lineage.warnings.append(f"license of ancestor {u.node.label} not checked ({u.reason}); path {u.path_text}")
    return LicenseReport(declared, derived_from or [], conflicts, unchecked, reason)
