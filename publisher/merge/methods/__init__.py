"""Merge methods: importing this package registers every method in ``REGISTRY``."""

from publisher.merge.methods import linear, passthrough, slerp, task_arithmetic
from publisher.merge.methods.registry import REGISTRY, MergeMethod, Param, TensorJob, get_method

__all__ = ["REGISTRY", "MergeMethod", "Param", "TensorJob", "get_method", "linear", "passthrough", "slerp", "task_arithmetic"]
