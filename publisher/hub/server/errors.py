"""Errors the local Hub answers with, shaped so huggingface_hub maps them to its own exceptions.

The client decides the exception class from the ``X-Error-Code`` header (a 401 on http://
is *not* mapped without it), and the message from ``X-Error-Message`` or the JSON body's
``error``. So every 4xx carries both.
"""

from __future__ import annotations


class ApiError(Exception):
    status: int = 400
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class RepoNotFound(ApiError):
    """401 for anonymous callers, 404 otherwise, as the Hub does for private repos."""

    status = 404
    code = "RepoNotFound"

    def __init__(self, repo_id: str, *, anonymous: bool = False) -> None:
        super().__init__(
            f"Repository Not Found for url: {repo_id}. Please make sure you specified the correct "
            "`repo_id` and `repo_type`. If you are trying to access a private repo, make sure you are authenticated.",
            status=401 if anonymous else 404,
        )


class RevisionNotFound(ApiError):
    status = 404
    code = "RevisionNotFound"

    def __init__(self, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision}")


class EntryNotFound(ApiError):
    status = 404
    code = "EntryNotFound"

    def __init__(self, path: str, commit: str | None = None, message: str | None = None) -> None:
        headers = {"X-Repo-Commit": commit} if commit else {}
        super().__init__(message or f"Entry not found: {path}", headers=headers)


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PreconditionFailed(ApiError):
    status = 412


class TooLarge(ApiError):
    status = 413
