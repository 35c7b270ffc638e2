"""Names the Hub accepts: repo ids, paths inside a repo, branch and tag names.

One set of rules for the server (which must refuse traversal and malformed names before
touching the disk) and the publisher (which checks a build before uploading anything).
Repo ids follow huggingface_hub's ``validate_repo_id``; refs follow ``git check-ref-format``.
"""

from __future__ import annotations

import re


class InvalidName(ValueError):
    """A repo id, path or ref name that the Hub would refuse."""


# Full matches only (``fullmatch``): ``$`` would accept a trailing newline.
_PART = re.compile(r"\A[A-Za-z0-9_.-]{1,96}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ``~ ^ : ? * [ \`` and space are not allowed in git ref names.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# Namespaces that would shadow the server's own routes.
RESERVED_NAMESPACES = frozenset({"api", "datasets", "spaces", "kernels", "models", "lfs-upload", "static"})


def check_repo_part(part: str, what: str = "name") -> str:
    if not isinstance(part, str) or not _PART.fullmatch(part) or part[0] in ".-" or part[-1] in ".-":
        raise InvalidName(
            f"invalid repo {what} {part!r}: use 1-96 of A-Z a-z 0-9 _ . - , not starting or ending with . or -"
        )
    if "--" in part or ".." in part:
        raise InvalidName(f"invalid repo {what} {part!r}: '--' and '..' are not allowed")
    if part.endswith(".git"):
        raise InvalidName(f"invalid repo {what} {part!r}: must not end with .git")
    return part


def split_repo_id(repo_id: str, *, allow_single: bool = False) -> tuple[str | None, str]:
    """``"ns/name"`` → ``("ns", "name")``; a bare ``"name"`` only when ``allow_single``."""
    if not isinstance(repo_id, str) or not repo_id:
        raise InvalidName("empty repo id")
    parts = repo_id.split("/")
    if len(parts) == 1 and allow_single:
        return None, check_repo_part(parts[0])
    if len(parts) != 2:
        raise InvalidName(f"invalid repo id {repo_id!r}: expected 'namespace/name'")
    return check_repo_part(parts[0], "namespace"), check_repo_part(parts[1])


def is_repo_id(repo_id: object, *, allow_single: bool = True) -> bool:
    if not isinstance(repo_id, str):
        return False
    try:
        split_repo_id(repo_id, allow_single=allow_single)
    except InvalidName:
        return False
    return True


def check_path_in_repo(path: str) -> str:
    """A relative POSIX path without traversal, control characters or a ``.git`` segment."""
    if not isinstance(path, str) or not path:
        raise InvalidName("empty path")
    if len(path.encode()) > 1024:
        raise InvalidName(f"path too long ({len(path)} characters)")
    if _CONTROL.search(path):
        raise InvalidName(f"path {path!r} contains control characters")
    if path.startswith("/") or "\\" in path or re.match(r"[A-Za-z]:", path):
        raise InvalidName(f"path {path!r} must be relative and use '/'")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidName(f"path {path!r} has an empty, '.' or '..' segment")
        if segment.lower() == ".git":
            raise InvalidName(f"path {path!r} is inside a .git folder")
    return path


def check_ref_name(name: str, what: str = "ref") -> str:
    """A branch or tag name as ``git check-ref-format --branch`` accepts it (short form only)."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"empty {what} name")
    problem = None
    if len(name) > 255:
        problem = "longer than 255 characters"
    elif _BAD_REF_CHARS.search(name):
        problem = "contains a space, a control character or one of ~ ^ : ? * [ \\"
    elif name.startswith(("-", "/", "refs/")) or name.endswith(("/", ".", ".lock")):
        problem = "starts with '-', '/' or 'refs/', or ends with '/', '.' or '.lock'"
    elif ".." in name or "//" in name or "@{" in name or name == "@":
        problem = "contains '..', '//' or '@{'"
    elif any(seg.startswith(".") or seg.endswith(".lock") for seg in name.split("/")):
        problem = "has a component starting with '.' or ending with '.lock'"
    if problem:
        raise InvalidName(f"invalid {what} name {name!r}: {problem}")
    return name
