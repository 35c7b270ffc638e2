"""Where the built-in templates and the demo's recipes are, installed or in a checkout.

The repository keeps ``templates/`` and ``recipes/`` at its root: that is where people edit
them, and in a checkout (an editable install) they are read from there. A wheel carries a
copy made at build time (``setup.py`` copies them into ``publisher/_bundled/``), so an
installed ``publisher`` works from any directory. One source of truth: the root folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

BUNDLED = Path(__file__).resolve().parent / "_bundled"
CHECKOUT = Path(__file__).resolve().parents[1]

Resource = Literal["templates", "recipes"]


def resource_dir(name: Resource) -> Path:
    """``templates`` or ``recipes``: the wheel's copy when installed, else the checkout's folder."""
    bundled = BUNDLED / name
    return bundled if bundled.is_dir() else CHECKOUT / name
