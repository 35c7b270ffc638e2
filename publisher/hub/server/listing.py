"""``list_models``/``list_datasets``/``list_spaces``: the query parameters the local Hub honours.

Every parameter the client sends is either applied here or refused with a 400 naming it,
so a filter is never accepted and silently ignored. ``filter`` values must all be tags of
the repo (its card's tags, library, pipeline tag, ``license:…``, ``base_model:…``,
``dataset:…``); ``sort`` orders newest / largest first like the Hub (``direction=1`` for
ascending). Downloads, likes and trending scores are all 0 on a local Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from publisher.hub.server.errors import BadRequest
from publisher.hub.server.http import Request

SORT_KEYS = {
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "downloads": "downloads",
    "likes": "likes",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
    "id": "id",
}
HONOURED = {"author", "search", "filter", "sort", "direction", "limit", "full", "config", "cardData",
            "expand", "expand[]", "cursor", "gated", "pipeline_tag"}


def check_params(req: Request) -> None:
    unknown = sorted(set(req.query) - HONOURED)
    if unknown:
        raise BadRequest(f"listing parameter(s) not supported by the local Hub: {', '.join(unknown)}")


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise BadRequest(f"expected true or false, not {value!r}")


def matches(info: dict[str, Any], req: Request) -> bool:
    """Whether one repo (its ``repo_info`` JSON) passes the query's filters."""
    tags = set(info.get("tags") or [])
    for extra in ("pipeline_tag", "library_name"):
        if isinstance(info.get(extra), str):
            tags.add(info[extra])
    wanted = [t for value in req.query.get("filter", []) for t in value.split(",") if t]
    if any(t not in tags for t in wanted):
        return False
    pipeline = req.arg("pipeline_tag")
    if pipeline and info.get("pipeline_tag") != pipeline:
        return False
    gated = req.arg("gated")
    return gated is None or _flag(gated) == (info.get("gated") not in (False, None))


@dataclass
class Listed:
    """One repo's JSON and its exact times (the JSON's dates are rounded to the second)."""

    info: dict[str, Any]
    created: float
    modified: int  # ns: when the main branch last moved


def _sort_key(item: Listed, key: str) -> Any:
    if key == "createdAt":
        return item.created
    if key == "lastModified":
        return item.modified
    if key == "id":
        return str(item.info.get("id"))
    return item.info.get(key) or 0


def ordered(items: list[Listed], req: Request) -> list[Listed]:
    sort = req.arg("sort")
    if not sort:
        return items
    key = SORT_KEYS.get(sort)
    if key is None:
        raise BadRequest(f"cannot sort by {sort!r}: use one of last_modified, created_at, downloads, likes, trending_score")
    direction = req.arg("direction") or "-1"
    if direction not in ("-1", "1"):
        raise BadRequest("direction must be -1 (descending) or 1 (ascending)")
    out = sorted(items, key=lambda i: str(i.info.get("id")))  # ties: by id
    return sorted(out, key=lambda i: _sort_key(i, key), reverse=direction == "-1")


def limited(items: list[Listed], req: Request) -> list[Listed]:
    limit = req.arg("limit")
    if limit is None:
        return items
    if not limit.isdigit():
        raise BadRequest(f"limit must be a non-negative integer, not {limit!r}")
    return items[: int(limit)]
