"""Merge methods: importing this package registers every method in ``REGISTRY``."""

from publisher.merge.methods import (
    linear,
    model_stock,
    passthrough,
    ram,
    sce,
    slerp,
    spherical,
    swap,
    task_arithmetic,
)
from publisher.merge.methods.registry import (
    REGISTRY,
    MergeMethod,
    Param,
    Problem,
    TensorJob,
    get_method,
)

__all__ = [
    "REGISTRY",
    "MergeMethod",
    "Param",
    "Problem",
    "TensorJob",
    "get_method",
    "linear",
    "model_stock",
    "passthrough",
    "ram",
    "sce",
    "slerp",
    "spherical",
    "swap",
    "task_arithmetic",
]
