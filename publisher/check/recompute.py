"""A streaming build's weights for its measured pass: computed again, proven equal to the published.

A streaming build uploads each shard as it is written and keeps only its header on disk, and
the engine writes tensors in the parents' file order (sorted by name: layers 0, 1, 10, 11, ...)
while a forward pass needs layers 0, 1, 2, ..., so no shard could be measured as it went by
without holding most of the model. Instead, once the engine is done and before the one commit,
each tensor the forward pass asks for is computed again by the engine's own code
(``merge/compute.py``: the parents' tensors by Range requests, the method, the variant's FP8
quantizer), and the sha256 of its bytes must equal the one the engine recorded as it wrote the
published shard (``Engine.tensor_digests``). So what is measured is provably what is published;
a difference is one error and nothing is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from publisher.check.reads import TensorReads
from publisher.errors import PublisherError
from publisher.lazy import torch
from publisher.merge.compute import TensorCompute, tensor_sha256
from publisher.merge.engine import VariantOutput, variant_owners
from publisher.merge.io import TensorSource
from publisher.merge.plan import MergePlan
from publisher.tensors import TensorInfo


class RecomputeMismatch(PublisherError):
    """A tensor computed again for the measured pass is not the one the build published."""

    exit_code = 1  # not the input: this machine computed other bits than it wrote


@contextmanager
def _one_thread() -> Iterator[None]:
    """As the engine computes (one tensor per thread): reductions give the same bits."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@dataclass
class Recomputed:
    """The build's tensors by variant, computed again from the parents one merged tensor at a time.

    The last merged tensor and its variants' outputs are kept, so an FP8 weight, its scale and
    the merged weight it is compared with (read next to one another) are computed once.
    """

    plan: MergePlan
    variants: list[VariantOutput]
    digests: dict[str, dict[str, str]]  # variant name -> tensor -> sha256, from the engine
    source: TensorSource
    tensors_computed: int = 0
    _owners: dict[str, dict[str, int]] = field(default_factory=dict)
    _index: int | None = None
    _merged: torch.Tensor | None = None
    _outputs: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.compute = TensorCompute(self.plan, self.source)
        self._owners = {v.name: variant_owners(self.plan, v) for v in self.variants}

    def tensor(self, variant: VariantOutput, name: str) -> torch.Tensor:
        index = self._owners[variant.name].get(name)
        if index is None:
            raise RecomputeMismatch(f"tensor {name} of {variant.name} is not in the build's plan", where=variant.folder or ".")
        if index != self._index:
            self._index, self._merged, self._outputs = None, None, {}
            with _one_thread():
                self._merged = self.compute.merged(self.plan.tensors[index])
            self._index = index
            self.tensors_computed += 1
        outputs = self._outputs.get(variant.name)
        if outputs is None:
            assert self._merged is not None
            with _one_thread():
                produced = variant.transform(self.plan.tensors[index].name, self._merged)
            outputs = self._outputs[variant.name] = {n: self._proven(variant, n, t) for n, t in produced}
        return outputs[name]

    def _proven(self, variant: VariantOutput, name: str, tensor: torch.Tensor) -> torch.Tensor:
        want = self.digests.get(variant.name, {}).get(name)
        got = tensor_sha256(tensor)
        if want != got:
            said = f"sha256 {want[:12]}…" if want else "no recorded sha256"
            raise RecomputeMismatch(
                f"tensor {name}: computed again for the measured pass it hashes to {got[:12]}…, the published shard "
                f"holds {said}",
                where=f"{variant.name} ({variant.folder or '.'})",
                fix="the merge is not deterministic on this machine; nothing was committed, report this",
            )
        return tensor

    def reads_for(self, build_dir: Path) -> Callable[[Path], TensorReads]:
        """The measured pass's readers: a variant's folder by recomputation, any other (a parent) by ``source``."""
        folders = {(build_dir / v.folder if v.folder else build_dir).resolve(): v for v in self.variants}

        def reads(folder: Path) -> TensorReads:
            variant = folders.get(Path(folder).resolve())
            return _VariantReads(self, variant) if variant is not None else _SharedReads(self.source)

        return reads


@dataclass
class _VariantReads:
    owner: Recomputed
    variant: VariantOutput

    def read(self, info: TensorInfo, rows: tuple[int, int] | None = None) -> torch.Tensor:
        t = self.owner.tensor(self.variant, info.name)
        return t[rows[0] : rows[1]] if rows is not None else t

    def close(self) -> None:
        pass


@dataclass
class _SharedReads:
    """A parent's tensors, read through the build's reader (closed by whoever opened it)."""

    source: TensorSource

    def read(self, info: TensorInfo, rows: tuple[int, int] | None = None) -> torch.Tensor:
        t = self.source.read(info)
        return t[rows[0] : rows[1]] if rows is not None else t

    def close(self) -> None:
        pass
