"""Build hook: the wheel carries a copy of the repository's ``templates/`` and ``recipes/``.

Everything else is in pyproject.toml. The folders stay at the repository root, where they
are edited; ``build_py`` copies them into ``publisher/_bundled/`` of the build (never into
the source tree), and an editable install reads the root folders directly (see
``publisher/resources.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("templates", "recipes")
HERE = Path(__file__).resolve().parent


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the root folders in place
        target = Path(self.build_lib) / "publisher" / "_bundled"
        for name in BUNDLED:
            source = HERE / name
            if not source.is_dir():
                raise SystemExit(f"{source}: missing; the wheel needs the repository's {name}/ folder")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildPyWithResources})
