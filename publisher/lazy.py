"""torch (and numpy), imported on first use.

Validating a recipe and planning a merge read only YAML and safetensors headers; importing
torch alone takes about a second, which would be most of ``publisher plan``'s time. Modules
on that path write ``from publisher.lazy import torch`` and use it as usual; the real import
happens the first time an attribute is read.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _LazyModule(ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)


if TYPE_CHECKING:
    import numpy as numpy
    import torch as torch
else:
    torch = _LazyModule("torch")
    numpy = _LazyModule("numpy")  # numpy: ~0.2 s, used only when a random method merges
