"""Two-model methods that pick, element by element, how much of the other model to take.

- NearSwap: take the other model's value where it is close to the base's (weight
  t / |a - b|, clipped to [0, 1]); in the load dtype.
- Arcee Fusion: take the other model's value where its importance (|delta| times the KL
  divergence of the rows' softmaxes) exceeds median + 1.5 IQR; the mask is float32, so
  mergekit's result is float32 for bf16 inputs. Quantiles of tensors above 10^6 elements
  are estimated on a sample: mergekit draws it from the global RNG, we draw it from the
  tensor's seeded generator (reproducible; tiny tensors are exact in both).
"""

from __future__ import annotations

from publisher.lazy import torch
from publisher.merge.methods.common import split_base
from publisher.merge.methods.registry import (
    MergeMethod,
    Param,
    TensorJob,
    non_negative,
    promote_f32,
    register,
)

QUANTILE_SAMPLE = 1_000_000


def nearswap(job: TensorJob) -> torch.Tensor:
    base, _, others = split_base(job)
    assert base is not None
    if not others:
        return base
    b = others[0]
    t = float(job.params["t"])
    weight = (t / torch.abs(base - b).clamp(min=1e-6)).clamp(min=0, max=1)
    return weight * b + (1 - weight) * base


def importance(other: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    diff = (other - base).abs()
    p = torch.softmax(other, dim=-1) + 1e-8
    q = torch.softmax(base, dim=-1) + 1e-8
    kl = torch.sum(p * torch.log(p / q), dim=-1, keepdim=True)
    return diff * kl


def fusion_threshold(scores: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flat = scores.reshape(-1)
    if flat.numel() > QUANTILE_SAMPLE:
        flat = flat[torch.randint(flat.numel(), (QUANTILE_SAMPLE,), generator=gen)]
    ordered = torch.sort(flat).values
    idx = (torch.tensor([0.25, 0.5, 0.75]) * (ordered.numel() - 1)).long()
    q1, median, q3 = ordered[idx]
    return median + 1.5 * (q3 - q1)


def arcee_fusion(job: TensorJob) -> torch.Tensor:
    base, _, others = split_base(job)
    assert base is not None
    if not others:
        return base
    other = others[0]
    scores = importance(other, base)
    mask = (scores >= fusion_threshold(scores, job.generator("#quantiles"))).float()
    del scores
    return base + (other - base) * mask


register(
    MergeMethod(
        name="nearswap",
        fn=nearswap,
        params=(Param("t", check=non_negative),),
        needs_base=True,
        min_models=2,
        max_models=2,
        pretty_name="NearSwap",
        reference_url="https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001",
    )
)
register(
    MergeMethod(
        name="arcee_fusion",
        fn=arcee_fusion,
        needs_base=True,
        min_models=2,
        max_models=2,
        random=True,
        workspace=4.0,
        pretty_name="Arcee Fusion",
        reference_url="https://arcee.ai",
        result_dtype=promote_f32,
    )
)
