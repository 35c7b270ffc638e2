"""The family tree of a built model, and the license check over all of it.

Direct parents come from the build's manifest (exactly what was read, with revisions).
Their ancestors come from each parent's own card front matter (``base_model``,
``base_model_relation``, ``license``, ``tags``), read from a sibling recipe in the same
catalog, from the README.md of a local folder, or through huggingface_hub from
``HF_ENDPOINT`` (hf_hub_download, so the Hub cache serves repeated reads), recursively
with a depth limit and cycle detection. Nothing is guessed: a parent whose card cannot be
read is *unknown*, and every such gap becomes a warning (``--strict`` turns warnings into
a failure).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from publisher.card.licenses import conflict, license_class
from publisher.errors import LicenseError, PublisherError
from publisher.merge.methods import REGISTRY
from publisher.recipe import REPO_ID_RE, load_recipe, model_references

Status = Literal["ok", "unknown", "no-card", "cycle", "depth-limit"]
Source = Literal["build", "recipe", "local", "hub", "none"]
RELATIONS = ("merge", "quantized", "finetune", "adapter")
# mergekit's method names, so a parent's card tag or config can name a method we do not implement.
MERGEKIT_METHODS = frozenset(
    {
        "linear", "slerp", "nuslerp", "multislerp", "karcher", "task_arithmetic", "ties", "dare_ties",
        "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear", "model_stock",
        "passthrough", "nearswap", "arcee_fusion", "sce", "core_space",
    }
)
_YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.M | re.S)
DEFAULT_MAX_DEPTH = 8
NO_CARD = "the repo has no model card"
NO_README = "no README.md in the folder"


class FetchError(Exception):
    """A card could not be read (network, missing repo, bad revision): the ancestry is unknown."""


class CardFetcher(Protocol):
    """Reads files of Hub repos. ``None`` means the repo exists but has no such file."""

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None: ...


class HubFetcher:
    """Files through huggingface_hub (``hf_hub_download``) from an endpoint, cached on disk and in memory."""

    def __init__(self, endpoint: str | None = None, token: str | bool | None = None, cache_dir: Path | None = None) -> None:
        self.endpoint = endpoint
        self.token = token
        self.cache_dir = cache_dir
        self._memo: dict[tuple[str, str, str | None], str | None] = {}

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        key = (repo_id, filename, revision)
        if key not in self._memo:
            self._memo[key] = self._download(repo_id, filename, revision)
        return self._memo[key]

    def _download(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        where = f"{repo_id}@{revision}" if revision else repo_id
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                endpoint=self.endpoint,
                token=self.token,
                cache_dir=self.cache_dir,
            )
        except GatedRepoError as e:
            raise FetchError(f"{where} is gated (set HF_TOKEN with access)") from e
        except RepositoryNotFoundError as e:
            raise FetchError(f"{where} does not exist or is private") from e
        except RevisionNotFoundError as e:
            raise FetchError(f"revision {revision} of {repo_id} does not exist") from e
        except RemoteEntryNotFoundError:
            return None  # the repo answered: it has no such file
        except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
            raise FetchError(f"{where} cannot be reached and is not in the cache") from e
        except EntryNotFoundError:
            return None
        except (HfHubHTTPError, OSError, ValueError) as e:
            raise FetchError(f"{where}: {' '.join(str(e).split())[:200]}") from e
        try:
            return Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise FetchError(f"{where}/{filename} is unreadable ({e})") from e


class FolderFetcher:
    """Cards from a folder laid out like the Hub, ``root/<namespace>/<name>/README.md`` (a mirror).

    Revisions are not kept in such a folder: every revision reads the one copy.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read(self, repo_id: str, filename: str, revision: str | None) -> str | None:
        repo_dir = self.root / repo_id
        if not repo_dir.is_dir():
            raise FetchError(f"{repo_id} is not in {self.root}")
        path = repo_dir / filename
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise FetchError(f"{path} is unreadable ({e})") from e


@dataclass
class CardInfo:
    """What a card (or a recipe) says about a model's own origin."""

    parents: list[str]
    relation: str | None
    method: str | None
    license: str | None
    license_name: str | None = None
    license_link: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class LineageNode:
    ref: str  # as written: a repo id, or a local path
    repo_id: str | None
    revision: str | None
    source: Source
    status: Status
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    relation: str | None = None  # how this model derives from its parents
    method: str | None = None  # merge method, when a merge
    parents: list[LineageNode] = field(default_factory=list)
    note: str | None = None  # why the node is not fully known
    is_root: bool = False

    @property
    def label(self) -> str:
        return self.repo_id or self.ref

    @property
    def key(self) -> str:
        return (self.repo_id or self.ref).casefold()

    @property
    def known(self) -> bool:
        return self.status == "ok"


@dataclass
class Lineage:
    root: LineageNode
    warnings: list[str]

    def walk(self) -> Iterator[tuple[list[LineageNode], LineageNode]]:
        """(path from the root, node) for every node below the root, depth first."""

        def rec(path: list[LineageNode], node: LineageNode) -> Iterator[tuple[list[LineageNode], LineageNode]]:
            for p in node.parents:
                yield [*path, p], p
                yield from rec([*path, p], p)

        yield from rec([self.root], self.root)

    def rows(self) -> list[tuple[int, LineageNode, bool]]:
        """(depth, node, repeated) in display order; a subtree seen before is not repeated."""
        out: list[tuple[int, LineageNode, bool]] = []
        seen: set[str] = set()

        def rec(node: LineageNode, depth: int) -> None:
            repeated = node.key in seen and bool(node.parents)
            out.append((depth, node, repeated))
            seen.add(node.key)
            if not repeated:
                for p in node.parents:
                    rec(p, depth + 1)

        rec(self.root, 0)
        return out

    def graph(self) -> tuple[list[tuple[str, LineageNode]], list[tuple[str, str, str]]]:
        """Distinct nodes with stable ids (n0, n1, ...) and (parent id, child id, edge label)."""
        ids: dict[str, str] = {}
        nodes: list[tuple[str, LineageNode]] = []
        edges: list[tuple[str, str, str]] = []

        def node_id(n: LineageNode) -> str:
            if n.key not in ids:
                ids[n.key] = f"n{len(ids)}"
                nodes.append((ids[n.key], n))
            return ids[n.key]

        def rec(n: LineageNode) -> None:
            child = node_id(n)
            for p in n.parents:
                pid = node_id(p)
                edge = (pid, child, n.method or n.relation or "")
                if edge not in edges:
                    edges.append(edge)
                rec(p)

        rec(self.root)
        return nodes, edges


# ----------------------------------------------------------------------------- reading cards


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []


def _method_from_config(data: Any) -> tuple[str | None, list[str]]:
    """merge_method and model references of a mergekit config or one of our recipes."""
    if not isinstance(data, dict):
        return None, []
    if isinstance(data.get("merge"), dict):
        data = data["merge"]
    method = data.get("merge_method")
    refs: list[str] = []
    if isinstance(data.get("base_model"), str):
        refs.append(data["base_model"])
    for m in data.get("models") or []:
        if isinstance(m, dict) and isinstance(m.get("model"), str):
            refs.append(m["model"])
    for s in data.get("slices") or []:
        for src in (s.get("sources") or []) if isinstance(s, dict) else []:
            if isinstance(src, dict) and isinstance(src.get("model"), str):
                refs.append(src["model"])
    return (method if isinstance(method, str) else None), list(dict.fromkeys(refs))


def parse_card(text: str, read_extra: Callable[[str], str | None] | None = None) -> CardInfo:
    """Origin facts from a model card (front matter through huggingface_hub's ModelCard)."""
    from huggingface_hub import ModelCard

    notes: list[str] = []
    try:
        card = ModelCard(text, ignore_metadata_errors=True)
        data = card.data.to_dict()
        body = card.text
    except (ValueError, yaml.YAMLError) as e:
        notes.append(f"unreadable front matter ({' '.join(str(e).split())[:120]})")
        data, body = {}, text
    parents = _str_list(data.get("base_model"))
    tags = [t.replace("-", "_").casefold() for t in _str_list(data.get("tags"))]
    relation = data.get("base_model_relation") if data.get("base_model_relation") in RELATIONS else None
    method = next((t for t in tags if t in MERGEKIT_METHODS or t in REGISTRY), None)
    if relation == "merge" or len(parents) > 1 or "merge" in tags or "mergekit" in tags:
        if method is None or not parents:
            # mergekit writes its configuration into the card body and the repo; both are data
            m: str | None = None
            refs: list[str] = []
            for block in _YAML_BLOCK.findall(body):
                try:
                    m, refs = _method_from_config(yaml.safe_load(block))
                except yaml.YAMLError:
                    continue
                if m:
                    break
            if m is None and read_extra is not None:
                for fname in ("mergekit_config.yml", "recipe.yaml"):
                    extra = read_extra(fname)
                    if extra is None:
                        continue
                    try:
                        m, refs = _method_from_config(yaml.safe_load(extra))
                    except yaml.YAMLError:
                        continue
                    if m:
                        break
            method = method or m
            if not parents:
                parents = refs
        if relation is None and (len(parents) > 1 or method):
            relation = "merge"
    lic = data.get("license")
    return CardInfo(
        parents=parents,
        relation=relation,
        method=method,
        license=lic if isinstance(lic, str) else None,
        license_name=data.get("license_name") if isinstance(data.get("license_name"), str) else None,
        license_link=data.get("license_link") if isinstance(data.get("license_link"), str) else None,
        notes=notes,
    )


class SiblingRecipes:
    """The recipes of the same catalog, by the repo they publish to."""

    def __init__(self, recipes_dir: Path | None, warn: Callable[[str], None]) -> None:
        self.by_name: dict[str, CardInfo] = {}
        self.paths: dict[str, Path] = {}
        self.by_sha: dict[str, Path] = {}
        if recipes_dir is None:
            return
        for path in sorted(p for p in Path(recipes_dir).rglob("*.y*ml") if p.suffix in (".yaml", ".yml")):
            try:
                loaded = load_recipe(path)
            except PublisherError as e:
                warn(f"sibling recipe skipped: {e}")
                continue
            r = loaded.recipe
            self.by_sha[loaded.sha256] = path
            if r.name is None:
                continue
            self.by_name[r.name.casefold()] = CardInfo(
                parents=model_references(r.merge),
                relation="merge",
                method=r.merge.merge_method,
                license=r.card.license,
                license_name=r.card.license_name,
                license_link=r.card.license_link,
            )
            self.paths[r.name.casefold()] = path

    def get(self, repo_id: str) -> CardInfo | None:
        return self.by_name.get(repo_id.casefold())


class LineageResolver:
    """Resolves parents into a tree; reads each distinct card once."""

    def __init__(
        self,
        *,
        fetcher: CardFetcher | None,
        siblings: SiblingRecipes,
        max_depth: int = DEFAULT_MAX_DEPTH,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.on_warning = warn
        self.fetcher = fetcher
        self.siblings = siblings
        self.max_depth = max_depth
        self.warnings: list[str] = []
        self._cache: dict[tuple[str, str | None], tuple[Source, CardInfo | None, str | None]] = {}

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            if self.on_warning is not None:
                self.on_warning(text)

    def _info(self, repo_id: str | None, revision: str | None, local: Path | None) -> tuple[Source, CardInfo | None, str | None]:
        """(source, info or None, why unknown)."""
        key = (str(local) if local else (repo_id or "").casefold(), revision)
        if key in self._cache:
            return self._cache[key]
        result: tuple[Source, CardInfo | None, str | None]
        sib = self.siblings.get(repo_id) if repo_id else None
        if sib is not None:
            result = ("recipe", sib, None)
        elif local is not None:
            readme = local / "README.md"
            if readme.is_file():
                extra = _local_reader(local)
                result = ("local", parse_card(readme.read_text(encoding="utf-8-sig"), extra), None)
            else:
                result = ("local", None, NO_README)
        elif repo_id is not None and self.fetcher is not None:
            fetcher = self.fetcher
            try:
                text = fetcher.read(repo_id, "README.md", revision)
            except FetchError as e:
                result = ("hub", None, str(e))
            else:
                if text is None:
                    result = ("hub", None, NO_CARD)
                else:
                    def extra(fname: str) -> str | None:
                        try:
                            return fetcher.read(repo_id, fname, revision)
                        except FetchError:
                            return None

                    result = ("hub", parse_card(text, extra), None)
        elif repo_id is not None:
            result = ("none", None, "no Hub access configured")
        else:
            result = ("none", None, "not a repo id")
        self._cache[key] = result
        return result

    def node(
        self,
        ref: str,
        *,
        repo_id: str | None,
        revision: str | None = None,
        local: Path | None = None,
        path: list[str],
        depth: int,
    ) -> LineageNode:
        label = repo_id or ref
        node = LineageNode(ref=ref, repo_id=repo_id, revision=revision, source="none", status="ok")
        chain = " → ".join([*path, label])
        if node.key in {p.casefold() for p in path}:
            node.status, node.note = "cycle", "cycle: already an ancestor on this path"
            self._warn(f"lineage cycle: {chain}")
            return node
        if depth > self.max_depth:
            node.status, node.note = "depth-limit", f"not followed beyond depth {self.max_depth}"
            self._warn(f"lineage of {label} not followed beyond depth {self.max_depth} (path {chain})")
            return node
        source, info, why = self._info(repo_id, revision, local)
        node.source = source
        if info is None:
            node.status = "no-card" if why in (NO_CARD, NO_README) else "unknown"
            node.note = why
            self._warn(f"ancestry of {label} is unknown: {why}")
            return node
        for n in info.notes:
            self._warn(f"{label}: {n}")
        node.license, node.license_name, node.license_link = info.license, info.license_name, info.license_link
        node.relation, node.method = info.relation, info.method
        for parent in info.parents:
            if REPO_ID_RE.match(parent):
                node.parents.append(self.node(parent, repo_id=parent, path=[*path, label], depth=depth + 1))
            else:
                bad = LineageNode(ref=parent, repo_id=None, revision=None, source="none", status="unknown",
                                  note="base_model is not a Hub repo id")
                self._warn(f"{label} names base_model {parent!r}, which is not a repo id; shown as unknown")
                node.parents.append(bad)
        return node


def _local_reader(folder: Path) -> Callable[[str], str | None]:
    def read(fname: str) -> str | None:
        p = folder / fname
        return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None

    return read


# ----------------------------------------------------------------------------- licenses


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
