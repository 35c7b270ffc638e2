"""Every request body the local Hub accepts, as a strict pydantic schema.

A body that does not fit is a 400 naming the first bad field, before any handler touches the
store: a wrong type (``value`` null, ``content`` an integer), an unknown field (a setting the
server would otherwise silently ignore), or JSON nested too deep to parse. Strict mode means
no coercion: ``"private": "yes"`` is refused rather than read as true.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from publisher.hub.server.errors import BadRequest
from publisher.hub.server.http import Request

RepoType = Literal["model", "dataset", "space"]
Visibility = Literal["public", "private"]
NonNegative = Annotated[int, Field(ge=0)]


class Body(BaseModel):
    """Strict, closed: an unknown field is refused, never ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


class OpenBody(BaseModel):
    """Strict on the fields we read; extensible protocols (git-lfs) may add others."""

    model_config = ConfigDict(strict=True, extra="ignore")


# ---------------------------------------------------------------- repos
class CreateRepo(Body):
    name: str
    organization: str | None = None
    type: RepoType | None = None
    private: bool | None = None
    visibility: Visibility | None = None
    sdk: str | None = None  # spaces: stored nowhere, but the client always sends it for a space


class DeleteRepo(Body):
    name: str
    organization: str | None = None
    type: RepoType | None = None


class MoveRepo(Body):
    fromRepo: str
    toRepo: str
    type: RepoType | None = None


class DuplicateRepo(Body):
    repository: str
    private: bool | None = None
    visibility: Visibility | None = None


class RepoSettings(Body):
    private: bool | None = None
    visibility: Visibility | None = None
    gated: Literal["auto", "manual", False] | None = None


class SuperSquash(Body):
    message: str | None = None


class ValidateYaml(Body):
    content: str
    repoType: RepoType | None = None


# ---------------------------------------------------------------- refs
class CreateTag(Body):
    tag: str
    message: str | None = None


class CreateBranch(Body):
    startingPoint: str | None = None


class CreateDiscussion(Body):
    title: str
    description: str | None = None
    pullRequest: bool = False


# ---------------------------------------------------------------- uploads
class PreuploadFile(Body):
    path: str
    sample: str = ""
    size: NonNegative


class Preupload(Body):
    files: list[PreuploadFile]
    gitIgnore: str | None = None


class LfsObject(OpenBody):
    oid: str
    size: NonNegative


class LfsRef(OpenBody):
    name: str


class LfsBatch(OpenBody):
    operation: Literal["upload", "download"]
    objects: list[LfsObject]
    transfers: list[str] | None = None
    ref: LfsRef | None = None
    hash_algo: Literal["sha256"] | None = None


class LfsVerify(OpenBody):
    oid: str
    size: NonNegative | None = None


class CompletedPart(Body):
    partNumber: Annotated[int, Field(ge=1)]
    etag: str


class MultipartComplete(Body):
    oid: str
    parts: list[CompletedPart]


# ---------------------------------------------------------------- commit (NDJSON lines)
class CommitHeader(Body):
    summary: str
    description: str | None = None
    parentCommit: str | None = None


class CommitFile(Body):
    path: str
    content: str
    encoding: Literal["base64"] = "base64"


class CommitLfsFile(Body):
    path: str
    oid: str
    algo: Literal["sha256"] = "sha256"
    size: NonNegative | None = None


class CommitDeletion(Body):
    path: str


class HeaderLine(Body):
    key: Literal["header"]
    value: CommitHeader


class FileLine(Body):
    key: Literal["file"]
    value: CommitFile


class LfsFileLine(Body):
    key: Literal["lfsFile"]
    value: CommitLfsFile


class DeletedFileLine(Body):
    key: Literal["deletedFile"]
    value: CommitDeletion


class DeletedFolderLine(Body):
    key: Literal["deletedFolder"]
    value: CommitDeletion


CommitLine = Annotated[
    HeaderLine | FileLine | LfsFileLine | DeletedFileLine | DeletedFolderLine, Field(discriminator="key")
]
COMMIT_LINE: TypeAdapter[CommitLine] = TypeAdapter(CommitLine)


# ---------------------------------------------------------------- trusted publishing (RFC 8693)
class TokenExchange(Body):
    grant_type: str
    subject_token_type: str
    subject_token: str
    resource: str


# ---------------------------------------------------------------- parsing
M = TypeVar("M", bound=BaseModel)


def load_json(raw: bytes, what: str = "request body") -> Any:
    """JSON, or a 400 (not JSON, not UTF-8, nested deeper than Python's parser goes)."""
    try:
        return json.loads(raw)
    except RecursionError as e:
        raise BadRequest(f"{what} is nested too deeply") from e
    except ValueError as e:
        raise BadRequest(f"{what} is not JSON: {e}") from e


def explain(err: ValidationError, what: str = "body") -> str:
    """One line: the first bad field and why (``files.0.size: Input should be a valid integer``)."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or what
    more = err.error_count() - 1
    return f"invalid {what}: {loc}: {first['msg']}" + (f" (and {more} more)" if more else "")


def validate(model: type[M], data: Any, what: str = "body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRequest(explain(e, what)) from e
    except RecursionError as e:
        raise BadRequest(f"{what} is nested too deeply") from e


def parse(req: Request, model: type[M], *, empty_ok: bool = False) -> M:
    """The request's JSON body as ``model``; an empty body is ``{}`` when ``empty_ok``."""
    raw = req.body.read_all()
    if not raw.strip() and empty_ok:
        return validate(model, {})
    return validate(model, load_json(raw))


def commit_line(raw: bytes, number: int) -> CommitLine:
    what = f"commit line {number}"
    data = load_json(raw, what)
    try:
        return COMMIT_LINE.validate_python(data)
    except ValidationError as e:
        raise BadRequest(explain(e, what)) from e
    except RecursionError as e:
        raise BadRequest(f"{what} is nested too deeply") from e
