"""A build directory as the publisher sees it: per variant repo, the files of one version.

The manifest's sha256 are the LFS oids (nothing is re-hashed); README.md and each repo's
manifest.json are hashed here. Only the recipe's ``publish:`` section is read from recipe.yaml.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from publisher.check.results import CHECKS_FILE
from publisher.errors import CardError, PublishError, RecipeError
from publisher.hub.ids import InvalidName, check_path_in_repo, split_repo_id
from publisher.manifest import (
    MANIFEST_FILE,
    QUANTIZE_ONLY,
    RECIPE_FILE,
    VARIANTS_DIR,
    Manifest,
    load_manifest,
)

CARD = "README.md"
EVAL_RESULTS = ".eval_results/"  # the Hub's evaluation files, written beside the card by the card stage


def is_card_file(path: str) -> bool:
    """README.md, ``.eval_results/*.yaml`` and checks.json (the release gate's report): what
    re-rendering a card or re-running the checks may change, never weights."""
    return path in (CARD, CHECKS_FILE) or (path.startswith(EVAL_RESULTS) and path.endswith(".yaml"))


@dataclass(frozen=True)
class LocalFile:
    path: str  # in the repo
    source: Path
    size: int
    sha256: str

    def git_blob_id(self) -> str:
        data = self.source.read_bytes()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class VariantBuild:
    name: str
    repo_id: str
    folder: Path
    files: dict[str, LocalFile]
    card: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PublishSettings:
    private: bool = False
    commit_message: str | None = None


def publish_settings(build_dir: Path) -> PublishSettings:
    """The recipe's ``publish:`` section (``private``, ``commit_message``) from the build's recipe.yaml.

    Read directly and minimally: publishing needs only these two keys, not the whole recipe.
    """
    path = Path(build_dir) / RECIPE_FILE
    if not path.is_file():
        return PublishSettings()
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe.yaml is not valid YAML ({e})", where=str(path)) from e
    section = data.get("publish") if isinstance(data, dict) else None
    if section is None:
        return PublishSettings()
    if not isinstance(section, dict):
        raise RecipeError("publish must be a mapping", where=str(path))
    private, message = section.get("private", False), section.get("commit_message")
    if not isinstance(private, bool):
        raise RecipeError("publish.private must be true or false", where=str(path))
    if message is not None and not isinstance(message, str):
        raise RecipeError("publish.commit_message must be a string", where=str(path))
    return PublishSettings(private, message)


def read_build(build_dir: Path) -> tuple[Manifest, list[VariantBuild]]:
    build_dir = Path(build_dir)
    manifest = load_manifest(build_dir)
    if not manifest.recipe_version:
        raise PublishError(
            "the build has no version", where=str(build_dir / MANIFEST_FILE),
            fix="add `version: 1.0.0` to the recipe and rebuild",
        )
    variants = []
    seen: set[str] = set()
    for v in manifest.variants:
        if not v.repo_id:
            raise PublishError(
                f"variant {v.name!r} has no repo id", where=str(build_dir / MANIFEST_FILE),
                fix="re-run `publisher quantize` with --name namespace/model" if manifest.merge_method == QUANTIZE_ONLY
                else "add `name: namespace/model` to the recipe and rebuild",
            )
        try:
            split_repo_id(v.repo_id)
        except InvalidName as e:
            raise PublishError(str(e), where=f"{build_dir / MANIFEST_FILE}: variant {v.name}") from e
        if v.repo_id in seen:
            raise PublishError(f"two variants publish to {v.repo_id}", where=str(build_dir / MANIFEST_FILE))
        seen.add(v.repo_id)
        folder = build_dir / v.folder if v.folder else build_dir
        files: dict[str, LocalFile] = {}
        for entry in v.files:
            if not v.folder and entry.path.split("/")[0] == VARIANTS_DIR:
                continue
            if entry.path in (CARD, MANIFEST_FILE):
                continue
            files[entry.path] = _local_file(folder, entry.path, entry.size, entry.sha256)
        card_path = folder / CARD
        if not card_path.is_file():
            raise CardError("no model card (README.md)", where=str(folder), fix="run `publisher card` on the build first")
        files[CARD] = _local_file(folder, CARD, card_path.stat().st_size, _sha256(card_path))
        for ev in sorted((folder / EVAL_RESULTS).glob("*.yaml")):
            rel = EVAL_RESULTS + ev.name
            files[rel] = _local_file(folder, rel, ev.stat().st_size, _sha256(ev))
        own = folder / MANIFEST_FILE  # the merged model's is the build's; each variant has its own
        if own.is_file():
            files[MANIFEST_FILE] = _local_file(folder, MANIFEST_FILE, own.stat().st_size, _sha256(own))
        checks = build_dir / CHECKS_FILE  # what the release gate checked and measured: with the merged model
        if not v.folder and checks.is_file():
            files[CHECKS_FILE] = _local_file(build_dir, CHECKS_FILE, checks.stat().st_size, _sha256(checks))
        variants.append(VariantBuild(v.name, v.repo_id, folder, files, card_path.read_text(encoding="utf-8")))
    return manifest, variants


def _local_file(folder: Path, path: str, size: int, sha256: str) -> LocalFile:
    try:
        check_path_in_repo(path)
    except InvalidName as e:
        raise PublishError(str(e), where=str(folder / MANIFEST_FILE)) from e
    source = folder / path
    if not source.is_file():
        raise PublishError("listed in manifest.json but missing", where=str(source), fix="rebuild")
    actual = source.stat().st_size
    if actual != size:
        raise PublishError(
            f"changed since the build ({actual} bytes, manifest.json says {size})", where=str(source), fix="rebuild"
        )
    return LocalFile(path, source, size, sha256)
