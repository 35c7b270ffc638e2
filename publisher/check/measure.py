"""The measured pass: perplexity of each model over the evaluation text; FP8 against merged.

Models are run one after the other through transformers' own modeling code with one unit of
weights resident (publisher.check.stream), in float32. The merged model's log-probabilities
are kept (tokens × vocab floats) so each FP8 variant is compared position by position:
top-1 agreement (same most likely next token) and mean KL(merged ‖ variant) in nats.
Parents are scored on the merged model's tokens, so every perplexity is over the same ids.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.check.evaltext import Tokens, evaluation_tokens
from publisher.check.reads import ReadsFor
from publisher.check.results import EvalText, Finding, Measurement
from publisher.check.stream import MeasureError, ModelBroken, StreamedModel, WeightSource
from publisher.lazy import torch

COMPUTE_DTYPE = "float32"


@dataclass(frozen=True)
class Target:
    """A model to measure: its name in the report, its folder, and what it is compared with."""

    variant: str  # "merged", "FP8", "parent <ref>"
    folder: Path
    label: str  # the folder as the report shows it
    compare: bool = False  # an FP8 variant: agreement and KL against the merged model


@dataclass
class MeasureResult:
    text: EvalText | None
    measurements: list[Measurement]
    findings: list[Finding]


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``; asking for CUDA where there is none is an environment error (exit 1)."""
    if device == "cpu":
        return device
    if device == "cuda":
        if not torch.cuda.is_available():
            raise MeasureError(
                "--device cuda: torch sees no CUDA device", where="device", fix="run on a GPU machine or drop --device", exit_code=1
            )
        return device
    raise MeasureError(f"unknown device {device!r}", where="device", fix="use cpu or cuda")


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise MeasureError(f"AutoTokenizer cannot load the tokenizer ({type(e).__name__})", where=str(folder)) from None


def _forward(
    target: Target, tokens: Tokens, device: str, reference: Path | None, reads: ReadsFor | None
) -> tuple[torch.Tensor, WeightSource]:
    source = WeightSource.open(target.folder, getattr(torch, COMPUTE_DTYPE), device, reference=reference, reads=reads)
    model = StreamedModel(target.folder, source)
    try:
        logits = model.logits(tokens.ids)
    finally:
        model.close()
    return torch.log_softmax(logits[:-1].float(), dim=-1).cpu(), source


def _nll(logprobs: torch.Tensor, ids: torch.Tensor) -> float:
    targets = ids[1:].reshape(-1, 1)
    return float(-logprobs.gather(1, targets).mean(dtype=torch.float64))


def measure(
    targets: list[Target],
    *,
    tokens: int,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    reads: ReadsFor | None = None,
) -> MeasureResult:
    """Score ``targets`` (the merged model first) over the evaluation text.

    ``reads`` gives each target folder's tensor bytes when they are not in its files (a
    streaming build's stubs: check/recompute.py); by default they are read from the files.
    """
    say = log or (lambda _m: None)
    device = resolve_device(device)
    merged = targets[0]
    tok = load_tokenizer(merged.folder)
    ids = evaluation_tokens(tok, tokens)
    if ids.text.tokens < 2:
        raise MeasureError("the tokenizer makes fewer than 2 tokens of the evaluation text", where=str(merged.folder))
    vocab_ids = int(ids.ids.max()) + 1
    result = MeasureResult(ids.text, [], [])
    reference: torch.Tensor | None = None
    for target in targets:
        t0 = time.monotonic()
        say(f"measuring {target.variant} ({target.label}) over {ids.text.tokens} tokens on {device}")
        try:
            logprobs, source = _forward(target, ids, device, merged.folder if target.compare else None, reads)
        except ModelBroken as e:
            result.findings.append(Finding(kind="measured", variant=target.variant, where=target.label, message=e.what))
            if target is merged:
                break
            continue
        if logprobs.shape[-1] < vocab_ids:
            result.findings.append(
                Finding(kind="measured", variant=target.variant, where=target.label,
                        message=f"the model has {logprobs.shape[-1]} logits but the tokens reach id {vocab_ids - 1}")
            )
            continue
        nll = _nll(logprobs, ids.ids)
        extra: dict[str, Any] = {}
        if target is merged:
            reference = logprobs
        elif target.compare and reference is not None:
            extra = _compare(reference, logprobs, nll, result.measurements[0].mean_nll, source)
        else:
            del logprobs
        result.measurements.append(
            Measurement(
                variant=target.variant,
                model=target.label,
                perplexity=_ppl(nll),
                mean_nll=nll,
                seconds=round(time.monotonic() - t0, 3),
                **extra,
            )
        )
    return result


def _ppl(nll: float) -> float:
    return math.exp(nll) if nll < 700 else math.inf


def _compare(reference: torch.Tensor, logprobs: torch.Tensor, nll: float, merged_nll: float, source: WeightSource) -> dict[str, Any]:
    agree = (reference.argmax(dim=-1) == logprobs.argmax(dim=-1)).double().mean()
    kl = (reference.exp() * (reference - logprobs)).sum(dim=-1).double().mean()
    layout = source.layout
    return {
        "scheme": layout.scheme if layout is not None else None,
        "top1_agreement": float(agree),
        "mean_kl": max(0.0, float(kl)),
        "recovery": _ppl(merged_nll) / _ppl(nll) if math.isfinite(_ppl(nll)) else 0.0,
        "fp8_weight_error": source.stats.fp8_weight_error if source.stats.worst_tensor else None,
        "fp8_worst_tensor": source.stats.worst_tensor,
    }
