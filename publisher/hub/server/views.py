"""The JSON shapes huggingface_hub parses: repo info, tree items, commits, refs; and pagination."""

from __future__ import annotations

import json
import struct
from typing import Any
from urllib.parse import urlencode

import yaml

from publisher.hub.cardcheck import front_matter
from publisher.hub.server.http import Request
from publisher.hub.server.storage import CommitInfo, Entry, Repo, Snapshot, iso


def tree_item(entry: Entry | tuple[str, str]) -> dict[str, Any]:
    if isinstance(entry, tuple):
        return {"type": "directory", "path": entry[0], "oid": entry[1], "size": 0}
    item: dict[str, Any] = {"type": "file", "path": entry.path, "size": entry.size, "oid": entry.blob_id}
    if entry.lfs:
        item["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size, "pointerSize": entry.lfs.pointer_size}
    return item


def commit_item(c: CommitInfo, formatted: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": c.id,
        "authors": [{"user": c.author, "avatar": None}],
        "date": c.date,
        "title": c.title,
        "message": c.message,
    }
    if formatted:
        item["formatted"] = {"title": c.title, "message": c.message}
    return item


def card_data(repo: Repo, snap: Snapshot) -> dict[str, Any] | None:
    entry = snap.files.get("README.md")
    if entry is None or entry.lfs or entry.size > (1 << 20):
        return None
    raw = front_matter(repo.read_blob(entry.blob_id).decode("utf-8", "replace"))
    if raw is None:
        return None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def safetensors_info(repo: Repo, snap: Snapshot) -> dict[str, Any] | None:
    """Parameter counts per dtype from the safetensors headers, as the Hub shows them."""
    params: dict[str, int] = {}
    found = False
    for path, entry in snap.files.items():
        if not path.endswith(".safetensors"):
            continue
        header = _safetensors_header(repo, entry)
        if header is None:
            continue
        found = True
        for name, t in header.items():
            if name == "__metadata__" or not isinstance(t, dict):
                continue
            n = 1
            for d in t.get("shape", []):
                n *= int(d)
            params[str(t.get("dtype"))] = params.get(str(t.get("dtype")), 0) + n
    if not found:
        return None
    return {"parameters": params, "total": sum(params.values())}


def _safetensors_header(repo: Repo, entry: Entry) -> dict[str, Any] | None:
    try:
        if entry.lfs:
            with open(repo.lfs.object_path(entry.lfs.oid), "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                if n > (100 << 20):
                    return None
                raw = f.read(n)
        else:
            data = repo.read_blob(entry.blob_id)
            (n,) = struct.unpack("<Q", data[:8])
            raw = data[8 : 8 + n]
        header = json.loads(raw)
        return header if isinstance(header, dict) else None
    except (OSError, ValueError, struct.error):
        return None


def repo_info(repo: Repo, snap: Snapshot, *, files_metadata: bool, cache: dict[str, Any]) -> dict[str, Any]:
    key = repo.key
    derived = cache.get(snap.commit.id)
    if derived is None:
        derived = {"card": card_data(repo, snap), "safetensors": safetensors_info(repo, snap), "config": _config(repo, snap)}
        cache[snap.commit.id] = derived
    card = derived["card"] or {}
    tags: list[str] = []
    if isinstance(card.get("tags"), list):
        tags += [t for t in card["tags"] if isinstance(t, str)]
    if isinstance(card.get("library_name"), str):
        tags.append(card["library_name"])
    if derived["safetensors"]:
        tags.append("safetensors")
    if isinstance(card.get("license"), str):
        tags.append(f"license:{card['license']}")
    base = card.get("base_model")
    for b in [base] if isinstance(base, str) else base if isinstance(base, list) else []:
        if isinstance(b, str):
            tags.append(f"base_model:{b}")
    siblings = []
    for entry in snap.files.values():
        sib: dict[str, Any] = {"rfilename": entry.path}
        if files_metadata:
            sib["size"] = entry.size
            sib["blobId"] = entry.blob_id
            if entry.lfs:
                sib["lfs"] = {"size": entry.lfs.size, "sha256": entry.lfs.oid, "pointerSize": entry.lfs.pointer_size}
        siblings.append(sib)
    info: dict[str, Any] = {
        "_id": key.repo_id,
        "id": key.repo_id,
        "author": key.namespace,
        "sha": snap.commit.id,
        "lastModified": snap.commit.date,
        "createdAt": iso(repo.meta.created_at),
        "private": repo.meta.private,
        "gated": repo.meta.gated,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": list(dict.fromkeys(tags)),
        "siblings": siblings,
        "usedStorage": sum(e.size for e in snap.files.values()),
    }
    if key.repo_type == "model":
        info["modelId"] = key.repo_id
        if isinstance(card.get("pipeline_tag"), str):
            info["pipeline_tag"] = card["pipeline_tag"]
        if isinstance(card.get("library_name"), str):
            info["library_name"] = card["library_name"]
        if derived["safetensors"]:
            info["safetensors"] = derived["safetensors"]
        if derived["config"]:
            info["config"] = derived["config"]
        if "model-index" in card:
            info["model-index"] = card["model-index"]
    if derived["card"] is not None:
        info["cardData"] = {k: v for k, v in card.items() if k != "model-index"}
    return info


def _config(repo: Repo, snap: Snapshot) -> dict[str, Any] | None:
    entry = snap.files.get("config.json")
    if entry is None or entry.lfs or entry.size > (1 << 20):
        return None
    try:
        cfg = json.loads(repo.read_blob(entry.blob_id))
    except ValueError:
        return None
    if not isinstance(cfg, dict):
        return None
    return {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}


def paginate(req: Request, items: list[Any], page_size: int, base_url: str) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` and the ``Link: rel="next"`` header the client follows."""
    try:
        start = max(0, int(req.arg("cursor") or 0))
    except ValueError:
        start = 0
    page = items[start : start + page_size]
    headers: dict[str, str] = {}
    if start + page_size < len(items):
        query = [(k, v) for k, vs in req.query.items() if k != "cursor" for v in vs]
        query.append(("cursor", str(start + page_size)))
        headers["Link"] = f'<{base_url}{req.path}?{urlencode(query)}>; rel="next"'
    return page, headers
