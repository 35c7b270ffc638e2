"""The output vocabulary (``tokenizer_source:`` / ``tokenizer:``) and embedding rows aligned to it.

mergekit 0.1.5's semantics, re-implemented: the output tokenizer is the base's
(``source: base``), a named model's, or the union (``union``: the base's tokenizer plus every
other parent's tokens it lacks, then the parents' added tokens); ``tokens:`` adds tokens and
says where their embedding comes from. Each parent's embedding-like tensors (embed_tokens,
lm_head) are re-indexed to the output vocabulary before the method runs: a row the parent has
is its own row; a token it lacks gets a default row: the only parent that has it, else the
base's row, else the mean over the parents that have it (``tokens:`` can name a model, a
model's token, or zero, and ``force`` it for every parent). ``pad_to_multiple_of`` pads with
the mean row. Only the embedding tensors grow; each is aligned inside its own engine job.

One deliberate difference: mergekit numbers the union's new tokens in the iteration order of
a Rust hash map, which changes from run to run; we number them in each parent's own id order,
so a build is reproducible (tests compare rows by token, not by id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import MergeError
from publisher.lazy import torch


@dataclass(frozen=True)
class RowSource:
    """Where a token's default row comes from, when a parent lacks it (or it is forced)."""

    kind: str  # "model" (that model's row of the token), "row" (a model's given row), "zero", "mean"
    model: int | None = None
    row: int | None = None


@dataclass
class VocabPlan:
    tokenizer: Any  # the output transformers tokenizer (saved by the build)
    size: int  # output rows (padded)
    vocab: dict[str, int]  # output token -> id
    index: list[list[int]]  # per model: output id -> the model's id, or -1
    defaults: dict[int, RowSource] = field(default_factory=dict)  # output id -> default row
    forced: set[int] = field(default_factory=set)
    new_tokenizer: bool = True  # False: the output tokenizer is a parent's, unchanged (its files are copied)

    def align(self, tensors: list[torch.Tensor], models: list[int]) -> list[torch.Tensor]:
        """Each model's tensor (rows = its vocabulary) re-indexed to the output vocabulary."""
        n = len(self.vocab)
        by_model = dict(zip(models, tensors, strict=True))
        dtype = tensors[0].dtype
        for t in tensors:
            dtype = torch.promote_types(dtype, t.dtype)
        shape = tensors[0].shape[1:]
        default_rows: dict[int, torch.Tensor] = {}
        for tid, src in self.defaults.items():
            if tid not in self.forced and all(self.index[m][tid] >= 0 for m in models):
                continue
            default_rows[tid] = self._default(tid, src, by_model, models, shape, dtype)
        out = []
        for m, x in zip(models, tensors, strict=True):
            idx = torch.tensor(self.index[m], dtype=torch.long)
            keep = idx >= 0
            if self.forced:
                keep[list(self.forced)] = False
            new = torch.zeros((self.size, *shape), dtype=dtype)
            rows = torch.nonzero(keep).flatten()
            new[rows] = x[idx[rows]].to(dtype)
            for tid, row in default_rows.items():
                if not bool(keep[tid]):
                    new[tid] = row
            if self.size > n:
                new[n:] = torch.mean(new[:n], dim=0)
            out.append(new)
        return out

    def _default(
        self, tid: int, src: RowSource, by_model: dict[int, torch.Tensor], models: list[int], shape: Any, dtype: Any
    ) -> torch.Tensor:
        if src.kind == "zero":
            return torch.zeros(shape, dtype=dtype)
        if src.kind == "mean":
            acc = torch.zeros(shape, dtype=dtype)
            count = 0
            for m in models:
                if self.index[m][tid] >= 0:
                    acc = acc + by_model[m][self.index[m][tid]]
                    count += 1
            return acc / count
        assert src.model is not None
        x = by_model.get(src.model)
        if x is None:
            raise MergeError(f"token {tid} takes its embedding from a model that is not an input of this tensor")
        row = src.row if src.kind == "row" else self.index[src.model][tid]
        if row is None or row < 0 or row >= x.shape[0]:
            raise MergeError(f"token {tid}: row {row} is not in the source model's embeddings")
        return x[row]


def _vocab_size(config: dict[str, Any], tokenizer: Any) -> int:
    size = config.get("vocab_size")
    return size if isinstance(size, int) else len(tokenizer.get_vocab())


def _load(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _by_id(vocab: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(vocab.items(), key=lambda kv: kv[1])


def _union(base_tok: Any, toks: list[tuple[Any, int]]) -> Any:
    """mergekit's union: base tokenizer + others' regular tokens it lacks + everyone's added tokens."""
    import tempfile

    out_vocab: dict[str, None] = {}
    added: dict[str, Any] = {}
    for tok, size in toks:
        decoder = tok.added_tokens_decoder
        added_contents = {info.content for info in decoder.values()}
        for t, i in _by_id(tok.get_vocab()):
            if i < size and t not in added_contents:
                out_vocab.setdefault(t, None)
        for i, info in sorted(decoder.items()):
            if i < size:
                added.setdefault(info.content, info)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        base_tok.save_pretrained(tmp)
        res = AutoTokenizer.from_pretrained(tmp)
    base_vocab = base_tok.get_vocab()
    for t in out_vocab:
        if t not in added and t not in base_vocab:
            res.add_tokens(t)
    for info in added.values():
        res.add_tokens(info)
    return res


def plan_vocabulary(
    folders: list[Path],
    configs: list[dict[str, Any]],
    base: int,
    source: str | int,
    tokens: dict[str, dict[str, Any]],
    pad_to_multiple_of: int | None,
    weightless: frozenset[int] = frozenset(),
) -> VocabPlan:
    """The output tokenizer and each parent's alignment. ``source``: 'base', 'union' or a model index;
    ``tokens``: token -> {'source': model index | ('row', model, id) | ('token', model, str) | 'zero', 'force'};
    ``weightless``: models that give a tokenizer but no embedding rows (a legacy SLERP's base)."""
    toks = [_load(f) for f in folders]
    sizes = [_vocab_size(c, t) for c, t in zip(configs, toks, strict=True)]
    if source == "base":
        out = toks[base]
    elif source == "union":
        order = [base, *[i for i in range(len(toks)) if i != base]]
        out = _union(toks[base], [(toks[i], sizes[i]) for i in order])
    else:
        assert isinstance(source, int)
        out = _load(folders[source])
    existing = set(out.get_vocab())
    new_tokenizer = source == "union" or any(t not in existing for t in tokens)
    for t in tokens:
        if t not in existing:
            out.add_tokens(t)
            existing.add(t)
    vocab = dict(_by_id(out.get_vocab()))
    n = len(vocab)
    size = n
    if pad_to_multiple_of and n % pad_to_multiple_of:
        size = (n // pad_to_multiple_of + 1) * pad_to_multiple_of
    index: list[list[int]] = []
    for tok, vs in zip(toks, sizes, strict=True):
        mv = tok.get_vocab()
        row = [-1] * n
        for t, i in vocab.items():
            j = mv.get(t, -1)
            row[i] = j if 0 <= j < vs else -1
        index.append(row)
    defaults: dict[int, RowSource] = {}
    forced: set[int] = set()
    for t, cfg in tokens.items():
        tid = vocab[t]
        if cfg.get("force"):
            forced.add(tid)
        src = cfg.get("source")
        if src is None:
            continue
        if src == "zero":
            defaults[tid] = RowSource("zero")
        elif isinstance(src, int):
            defaults[tid] = RowSource("model", model=src)
        elif src[0] == "row":
            defaults[tid] = RowSource("row", model=src[1], row=int(src[2]))
        else:  # ("token", model, text): that model's row of another token
            mv = toks[src[1]].get_vocab()
            if src[2] not in mv:
                raise MergeError(f"token {src[2]!r} is not in the vocabulary of the model named for {t!r}")
            defaults[tid] = RowSource("row", model=src[1], row=mv[src[2]])
    everyone = [m for m in range(len(toks)) if m not in weightless]
    for t, tid in vocab.items():
        if t in tokens and tid in defaults:
            continue
        have = [m for m in everyone if index[m][tid] >= 0]
        if len(have) == len(everyone):
            continue
        if len(have) == 1:
            defaults[tid] = RowSource("model", model=have[0])
        elif not have:
            defaults[tid] = RowSource("zero")
        elif base not in weightless and index[base][tid] >= 0:
            defaults[tid] = RowSource("model", model=base)
        else:
            defaults[tid] = RowSource("mean")
    return VocabPlan(
        tokenizer=out, size=size, vocab=vocab, index=index, defaults=defaults, forced=forced, new_tokenizer=new_tokenizer
    )
