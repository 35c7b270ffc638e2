"""YAML loading that remembers where each value came from, so errors can say file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from publisher.errors import RecipeError

Loc = tuple[str | int, ...]


class LocatedYaml:
    """The parsed data plus a map from each key path to its 1-based line."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def alias(self, src: Loc, dst: Loc) -> None:
        """Make ``dst`` and everything under it report the lines of ``src`` (a moved section)."""
        n = len(src)
        for loc, line in list(self.lines.items()):
            if loc[:n] == src:
                self.lines.setdefault((*dst, *loc[n:]), line)

    def where(self, loc: Loc) -> str:
        """``file:line`` for the deepest known prefix of ``loc``."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return f"{self.path}:{line}"
        return str(self.path)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*loc, i)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines)


def load_located(path: Path) -> LocatedYaml:
    try:
        text = path.read_text()
    except FileNotFoundError as e:
        raise RecipeError("file not found", where=str(path)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"cannot read ({e})", where=str(path)) from e
    if "\n---" in text:
        try:
            several = sum(1 for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None) > 1
        except yaml.YAMLError:
            several = False
        if several:
            raise RecipeError(
                "a multi-document recipe (mergekit-multi stages): only 'publisher build', 'plan' and 'release' read it",
                where=str(path),
                fix="build or plan it; for anything else, put one document in a file of its own",
            )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RecipeError(f"invalid YAML: {e.problem or e}", where=where, fix="fix the YAML syntax") from e
    except yaml.YAMLError as e:
        raise RecipeError(f"invalid YAML: {e}", where=str(path)) from e
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return LocatedYaml(path, data, lines)
