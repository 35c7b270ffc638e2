"""The recipe's ``checks:`` section: what the release gate measures and the thresholds it obeys.

Defaults stop an obviously broken build without knowing anything about the model: a
perplexity that is not finite, worse than 1.5 × uniform guessing over the vocabulary, or (with
parents measured) above 1.3 × the best parent's; an FP8 variant whose weights do not
dequantize to the merged weights (a wrong scale), whose perplexity is 10 % above the merged
model's, or whose next-token distribution is 0.1 nats (mean KL) away from it. A recipe
tightens them, e.g. ``min_top1_agreement: 0.97``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TOKENS = 512


class ChecksSection(BaseModel):
    """``checks:`` in a recipe; every field optional, ``checks: {measure: false}`` skips the forward pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: bool = True  # run the streaming forward pass (structural checks always run)
    tokens: int = Field(default=DEFAULT_TOKENS, ge=16, le=1 << 16)  # evaluation tokens
    with_parents: bool = False  # also measure every parent (needed by max_perplexity_vs_best_parent)
    device: Literal["cpu", "cuda"] = "cpu"
    # perplexity of the merged model
    max_perplexity: float | None = Field(default=None, gt=0)
    max_perplexity_vs_uniform: float | None = Field(default=1.5, gt=0)  # ppl / vocab_size
    max_perplexity_vs_best_parent: float | None = Field(default=1.3, gt=0)  # applies when parents are measured
    # each FP8 variant against its merged model
    # top-1 agreement means little where the merged model is unsure of every token (a random
    # model): off by default, set it (e.g. 0.97) for real models; KL is meaningful for both.
    # Measured over 512 tokens: the demo's random stand-ins' correct fp8-dynamic copies agree on
    # 89-97 % of tokens (KL <= 1.4e-5 nats, recovery >= 99.7 %), so a 0.97 default would refuse
    # them; stand-ins that predict the text (perplexity 0.34 x uniform) agree on 100 %.
    min_top1_agreement: float | None = Field(default=None, ge=0, le=1)
    max_mean_kl: float | None = Field(default=0.1, ge=0)  # nats per token
    max_perplexity_vs_merged: float | None = Field(default=1.1, gt=0)  # FP8 ppl / merged ppl
    # FP8 weights against the merged weights: max |W - q*scale| / max|W| of the scale group
    max_fp8_weight_error: float = Field(default=0.1, gt=0)


CHECKS_FIELDS = tuple(ChecksSection.model_fields)
