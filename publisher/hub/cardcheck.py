"""The model-card metadata checks the Hub's ``/api/validate-yaml`` makes that need no network.

The local Hub answers validate-yaml with these, and the publisher runs them before it
touches the network, so a card the Hub would reject never starts an upload. The rules
follow hub-docs ``modelcard.md``: front matter is a YAML mapping; ``license`` is a Hub id
(or ``other`` with ``license_name`` + ``license_link``); ``base_model``/``new_version``
are repo ids; ``model-index`` has the shape the Hub parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from publisher.card.licenses import license_problems
from publisher.hub.ids import is_repo_id

# The same front-matter pattern the Hub and huggingface_hub use.
FRONT_MATTER = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
BASE_MODEL_RELATIONS = ("adapter", "merge", "quantized", "finetune")


@dataclass
class CardCheck:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def front_matter(content: str) -> str | None:
    """The raw YAML between the leading ``---`` lines, or None when the card has none."""
    match = FRONT_MATTER.match(content)
    return match.group(2) if match else None


def check_card(content: str, repo_type: str = "model") -> CardCheck:
    result = CardCheck()
    raw = front_matter(content)
    if raw is None:
        result.warnings.append("empty or missing yaml metadata in repo card")
        return result
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        result.errors.append(f"YAML metadata is not valid YAML{where}: {problem}")
        return result
    if data is None:
        result.warnings.append("empty or missing yaml metadata in repo card")
        return result
    if not isinstance(data, dict):
        result.errors.append(f"YAML metadata must be a mapping (key: value), got a {type(data).__name__}")
        return result
    result.metadata = data
    if repo_type == "model":
        _check_model_metadata(data, result.errors)
    return result


def _str_or_list(value: object) -> list[object] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    return None


def _check_model_metadata(data: dict[str, Any], errors: list[str]) -> None:
    if "license" in data:
        licenses = _str_or_list(data["license"])
        if licenses is None or not licenses:
            errors.append('"license" must be a license id string')
        else:
            for lic in licenses:
                errors.extend(f'"license": {p}' for p in license_problems(lic, data.get("license_name"), data.get("license_link")))
    elif "license_name" in data or "license_link" in data:
        errors.append('"license_name"/"license_link" are only meaningful with license: other')

    for key in ("base_model", "datasets"):
        if key not in data:
            continue
        values = _str_or_list(data[key])
        if values is None or not values:
            errors.append(f'"{key}" must be a repo id or a non-empty list of repo ids')
            continue
        for v in values:
            if not is_repo_id(v):
                errors.append(f'"{key}": {v!r} is not a valid repo id (expected namespace/name)')
    if "base_model_relation" in data:
        if data["base_model_relation"] not in BASE_MODEL_RELATIONS:
            errors.append(f'"base_model_relation" must be one of {", ".join(BASE_MODEL_RELATIONS)}')
        if "base_model" not in data:
            errors.append('"base_model_relation" needs "base_model"')
    if "new_version" in data and not is_repo_id(data["new_version"]):
        errors.append(f'"new_version": {data["new_version"]!r} is not a valid repo id')

    for key in ("tags", "language", "metrics"):
        if key in data:
            values = _str_or_list(data[key])
            if values is None or not all(isinstance(v, str) and v for v in values):
                errors.append(f'"{key}" must be a string or a list of strings')
    for key in ("pipeline_tag", "library_name"):
        if key in data and not isinstance(data[key], str):
            errors.append(f'"{key}" must be a string')

    if "model-index" in data:
        errors.extend(_model_index_problems(data["model-index"]))


def _model_index_problems(index: object) -> list[str]:
    """The shape the Hub parses; each problem names its place, e.g. model-index[0].results[1]."""
    problems: list[str] = []

    def need_str(obj: dict[str, Any], key: str, where: str) -> None:
        if not isinstance(obj.get(key), str) or not obj[key]:
            problems.append(f'"{where}.{key}" is required and must be a string')

    if not isinstance(index, list) or not index:
        return ['"model-index" must be a non-empty list']
    for i, entry in enumerate(index):
        at = f"model-index[{i}]"
        if not isinstance(entry, dict):
            problems.append(f'"{at}" must be a mapping')
            continue
        need_str(entry, "name", at)
        results = entry.get("results")
        if not isinstance(results, list):
            problems.append(f'"{at}.results" must be a list')
            continue
        for j, res in enumerate(results):
            rat = f"{at}.results[{j}]"
            if not isinstance(res, dict):
                problems.append(f'"{rat}" must be a mapping')
                continue
            task, dataset, metrics = res.get("task"), res.get("dataset"), res.get("metrics")
            if not isinstance(task, dict):
                problems.append(f'"{rat}.task" must be a mapping with a type')
            else:
                need_str(task, "type", f"{rat}.task")
            if not isinstance(dataset, dict):
                problems.append(f'"{rat}.dataset" must be a mapping with type and name')
            else:
                need_str(dataset, "type", f"{rat}.dataset")
                need_str(dataset, "name", f"{rat}.dataset")
            if not isinstance(metrics, list) or not metrics:
                problems.append(f'"{rat}.metrics" must be a non-empty list')
            else:
                for k, metric in enumerate(metrics):
                    mat = f"{rat}.metrics[{k}]"
                    if not isinstance(metric, dict):
                        problems.append(f'"{mat}" must be a mapping')
                        continue
                    need_str(metric, "type", mat)
                    if "value" not in metric or isinstance(metric["value"], dict | list):
                        problems.append(f'"{mat}.value" is required and must be a number or string')
            source = res.get("source")
            if source is not None and (not isinstance(source, dict) or not isinstance(source.get("url"), str)):
                problems.append(f'"{rat}.source" must be a mapping with a url')
    return problems
