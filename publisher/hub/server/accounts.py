"""Who may hold which name: users and organizations share one namespace, unique ignoring case.

As on the Hub, ``bob`` and ``BOB`` cannot both exist, and an organization can never take a
user's name (nor a user an organization's): otherwise a token for ``BOB``, or a membership
in an "org" called ``alice``, would own somebody else's repos. Ownership itself is then
compared exactly (``Identity.owns``), so the rules here are the only place case is folded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from publisher.hub.ids import check_repo_part


class NameTaken(ValueError):
    """A user or organization name already held by another account (ignoring case)."""


def check_new_names(users: Mapping[str, Sequence[str]], user: str, orgs: Sequence[str]) -> None:
    """Refuse ``user`` (member of ``orgs``) if a name collides with another account's.

    ``users`` maps each existing user to its organizations; organizations exist through
    their members. Exact re-use of an existing name of the same kind is fine.
    """
    check_repo_part(user, "user name")
    for org in orgs:
        check_repo_part(org, "organization name")
    known_users = {u.lower(): u for u in users}
    known_orgs = {o.lower(): o for member_orgs in users.values() for o in member_orgs}
    _claim(user, "user", known_users, known_orgs)
    for org in orgs:
        if org.lower() == user.lower():
            raise NameTaken(f"organization {org!r} cannot have the name of its member {user!r}")
        _claim(org, "organization", known_orgs, known_users)


def _claim(name: str, kind: str, same: dict[str, str], other: dict[str, str]) -> None:
    held = same.get(name.lower())
    if held is not None and held != name:
        raise NameTaken(f"{kind} name {name!r} is taken by {held!r} (names are unique ignoring case)")
    clash = other.get(name.lower())
    if clash is not None:
        other_kind = "an organization" if kind == "user" else "a user"
        raise NameTaken(f"{name!r} is already {other_kind} ({clash!r}): a {kind} cannot take its name")
