"""The recipe's ``card:`` section: what the card must state that the weights cannot tell.

Kept apart from ``publisher.recipe`` (the merge semantics) so the card's fields can grow
without touching the merge schema; ``publisher.recipe`` imports ``CardSection`` from here.
"""

from __future__ import annotations

import datetime as dt

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

_HTTP = ("http://", "https://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalSource(_Strict):
    """Where a number was published: the model-index ``source`` and the table's link."""

    name: str = Field(min_length=1)  # "Open LLM Leaderboard"
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(_HTTP):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v


class Evaluation(_Strict):
    """One published number, with what it was measured with and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    task: str
    metric: str = "acc"
    value: float
    dataset: str | None = None  # Hub dataset id; default: the known benchmark's id, if any
    dataset_config: str | None = None
    split: str | None = None
    n_shot: int | None = Field(default=None, ge=0, validation_alias=AliasChoices("n_shot", "few_shot"))
    harness: str | None = None  # "lm-evaluation-harness 0.4.2"
    date: dt.date | None = None  # when the number was measured or published
    source: EvalSource | None = None

    @property
    def few_shot(self) -> int | None:
        return self.n_shot


class Comparison(_Strict):
    model: str  # a Hub repo id (linked on the card) or a free name
    results: dict[str, float]
    note: str | None = None
    source: EvalSource | None = None


class CardSection(_Strict):
    """Facts the weights cannot tell. Everything else on the card is read from the output."""

    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    license_reason: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    # who made the model (default: the repo's namespace) and, for a re-publication, when it
    # was first published (the strip's date stays this version's)
    creator: str | None = Field(default=None, min_length=1)
    original_published: dt.date | None = None
    summary: str | None = None
    description: str | None = None
    use_cases: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    language: list[str] | str | None = None
    tags: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    evaluations: str | list[Evaluation] | None = None  # an lm-eval results JSON path, or inline
    # the source of every number of a results file (or the default of inline ones)
    evaluation_source: EvalSource | None = None
    comparisons: list[Comparison] = Field(default_factory=list)
    # merge parameters the recipe reconstructs rather than copies: parameter -> why, e.g.
    # {t: "the original page gives only ranges; the LazyMergekit default stops"}
    assumed: dict[str, str] = Field(default_factory=dict)
    template: str | None = None  # a Jinja2 template path, relative to the recipe

    @field_validator("assumed")
    @classmethod
    def _reasons_ok(cls, v: dict[str, str]) -> dict[str, str]:
        for name, why in v.items():
            if not why.strip():
                raise ValueError(f"assumed.{name} needs a reason (why the value is assumed)")
        return v
