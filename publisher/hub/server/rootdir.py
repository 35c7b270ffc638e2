"""A local Hub's data folder holds secrets (its signing key, token digests): it ignores itself.

Like a virtual environment's folder, the root gets a ``.gitignore`` of ``*`` when it is
created, so a server started inside a git checkout (``--root hub-data``, the demo's
``demo-out/hub``) can never be committed with ``git add``.
"""

from __future__ import annotations

from pathlib import Path

from publisher.hub.server.atomic import write_atomic

IGNORE_ALL = b"# a local Hub's data (signing secret, tokens, repos): never commit it\n*\n"


def make_root(root: Path) -> Path:
    """Create ``root`` if needed and make sure git ignores everything in it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        write_atomic(ignore, IGNORE_ALL, fsync=False)
    return root
