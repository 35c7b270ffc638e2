"""A quantized variant names the merged commit it was quantized from, once that commit exists.

Each variant folder of a build carries its own ``manifest.json`` whose ``quantized_from``
pins the merged model by content (its files' sha256) from the start, and by commit once the
merged repo is published. ``publish`` learns that commit (the merged repo's version tag)
before it plans the variants, writes it into their manifests and re-renders the cards the
way they were last rendered (``publisher.card.settings``), so the variant's card says which
BF16 commit it is. The same build published again finds the same commit: nothing changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from publisher.errors import PublisherError
from publisher.manifest import MANIFEST_FILE, Manifest, load_manifest


def unpinned(build_dir: Path, commit: str) -> list[Path]:
    """Variant manifests that do not name ``commit`` as the merged model they come from."""
    build = load_manifest(build_dir)
    out = []
    for v in build.variants:
        path = Path(build_dir) / v.folder / MANIFEST_FILE
        if not v.folder or not path.is_file():
            continue  # the merged model, or a variant published before variants had manifests
        own = Manifest.model_validate_json(path.read_text())
        if own.quantized_from is not None and own.quantized_from.revision != commit:
            out.append(path)
    return out


def pin_variants(build_dir: Path, commit: str, log: Callable[[str], None]) -> bool:
    """Pin every variant to the merged ``commit`` and re-render the cards; False when already pinned."""
    paths = unpinned(build_dir, commit)
    for path in paths:
        own = Manifest.model_validate_json(path.read_text())
        assert own.quantized_from is not None
        pinned = own.model_copy(update={"quantized_from": own.quantized_from.model_copy(update={"revision": commit})})
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(pinned.to_json())
        tmp.replace(path)
    if not paths:
        return False
    from publisher.card.settings import rendered_here, rerender

    if rendered_here(build_dir):
        log(f"variants pinned to the merged model's commit {commit[:7]}; re-rendering the cards")
        try:
            rerender(build_dir, warn=lambda _w: None)
        except PublisherError as e:  # e.g. the parents' cards are out of reach now: the manifest is pinned
            log(f"cards not re-rendered ({e.what}); run `publisher card` to show the pin")
    else:
        log(f"variants pinned to the merged model's commit {commit[:7]} (cards not rendered by publisher: left as they are)")
    return True


def shadow_copy(build_dir: Path, into: Path) -> Path:
    """A copy of the build made of hard links (a dry run pins the copy, never the build itself).

    Pinning replaces files (write to a temporary name, rename), so the build's own files,
    linked from the copy, are never written.
    """

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target = into / Path(build_dir).name
    shutil.copytree(build_dir, target, copy_function=link, symlinks=True)
    return target
