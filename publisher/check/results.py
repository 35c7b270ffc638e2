"""``checks.json``: what the checks found and measured for a build, and whether it may be published.

The file sits in the build directory beside ``manifest.json`` and is published with the
merged model. It records the sha256 of the manifest it checked, so a rebuilt folder is never
published on the verdict of an older build. The card states its measurements; the publisher
obeys its verdict.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from publisher.errors import OutputError, PublisherError
from publisher.manifest import MANIFEST_FILE, RECIPE_FILE

CHECKS_FILE = "checks.json"
CHECKS_SCHEMA = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Finding(_Strict):
    """One failed fact: where (file or tensor) and what, in one line."""

    kind: Literal["structural", "measured", "threshold"]
    variant: str  # "merged", "FP8", or "parent <ref>"
    where: str  # a file or folder relative to the build dir, or the recipe's checks field
    message: str

    def line(self, build_dir: Path | None = None) -> str:
        """One line for a person: the file (or the recipe's field), then the fact."""
        if build_dir is None:
            return f"{self.where}: {self.message}"
        if self.kind == "threshold":
            return f"{Path(build_dir) / RECIPE_FILE}: {self.where}: {self.message}"
        where = Path(build_dir) / self.where if self.where not in ("", ".") else Path(build_dir)
        return f"{where}: {self.message}"


class EvalText(_Strict):
    """The evaluation text's identity: anyone can recompute the numbers on the same tokens."""

    source: str  # "pydoc_data.topics (Python 3.11.9)"
    sha256: str  # of the text as tokenized
    chars: int
    tokens: int  # tokens scored (the first one is never predicted)
    unknown_tokens: int = 0  # tokens the tokenizer mapped to its unknown token


class Measurement(_Strict):
    """One model's numbers over the evaluation text."""

    variant: str  # "merged", a variant name, or "parent <ref>"
    model: str  # the folder measured, relative to the build dir where it is inside it
    perplexity: float
    mean_nll: float
    scheme: str | None = None  # FP8 scheme simulated, as vLLM computes it
    top1_agreement: float | None = None  # vs the merged model
    mean_kl: float | None = None  # KL(merged || variant), nats per token
    recovery: float | None = None  # merged perplexity / variant perplexity
    fp8_weight_error: float | None = None  # worst max|W - q*scale| / max|W| over scale groups
    fp8_worst_tensor: str | None = None  # where that worst error is
    seconds: float


class CheckReport(_Strict):
    schema_version: int = CHECKS_SCHEMA
    tool: str  # "publisher 0.1.0"
    checked: datetime  # UTC
    manifest_sha256: str
    passed: bool
    measured: bool  # False when `checks: {measure: false}` or the structural checks failed
    device: str = "cpu"
    text: EvalText | None = None
    measurements: list[Measurement] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    thresholds: dict[str, float | None] = Field(default_factory=dict)
    note: str | None = None  # why a requested measurement did not run

    def measurement(self, variant: str) -> Measurement | None:
        return next((m for m in self.measurements if m.variant == variant), None)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


VOLATILE = ("checked",)  # when it ran: two checks of the same build differ only there and in timings


def same_checks(a: str, b: str) -> bool:
    """Two checks.json texts that state the same facts (the time they ran and took aside)."""

    def facts(text: str) -> object:
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if not isinstance(data, dict):
            return data
        for key in VOLATILE:
            data.pop(key, None)
        for m in data.get("measurements") or []:
            if isinstance(m, dict):
                m.pop("seconds", None)
        return data

    return facts(a) == facts(b)


def manifest_sha256(build_dir: Path) -> str:
    return hashlib.sha256((Path(build_dir) / MANIFEST_FILE).read_bytes()).hexdigest()


def load_report(build_dir: Path) -> CheckReport | None:
    """The build's checks.json, or None when it has none."""
    path = Path(build_dir) / CHECKS_FILE
    if not path.is_file():
        return None
    try:
        return CheckReport.model_validate_json(path.read_text())
    except ValueError as e:
        first = str(e).splitlines()[0]
        raise OutputError(f"checks.json is invalid ({first})", where=str(path), fix="run `publisher check` again") from e


def write_report(build_dir: Path, report: CheckReport) -> Path:
    """Written whole or not at all (temp file + rename)."""
    path = Path(build_dir) / CHECKS_FILE
    tmp = path.with_name(f".{CHECKS_FILE}.tmp")
    tmp.write_text(report.to_json())
    tmp.replace(path)
    return path


class ChecksFailed(PublisherError):
    """The build's checks failed (or never ran): it must not be published."""


def require_passed(build_dir: Path) -> CheckReport | None:
    """The gate the publisher obeys: a passing checks.json of this very build, or ChecksFailed.

    A header-only copy of a published build (card re-renders) carries the report it was
    published with, if any: only its card can change, so there is nothing to gate.
    """
    from publisher.hub.published import HEADER_ONLY_MARK

    build_dir = Path(build_dir)
    report = load_report(build_dir)
    if (build_dir / HEADER_ONLY_MARK).is_file():
        return report
    if report is None:
        raise ChecksFailed(
            "the build has not been checked (no checks.json)",
            where=str(build_dir),
            fix=f"run `publisher check {build_dir}` first",
        )
    if report.manifest_sha256 != manifest_sha256(build_dir):
        raise ChecksFailed(
            "checks.json is from another build (its manifest.json differs)",
            where=str(build_dir / CHECKS_FILE),
            fix=f"run `publisher check {build_dir}` again",
        )
    if not report.passed:
        first = report.findings[0].line(build_dir) if report.findings else "the checks failed"
        more = f" (and {len(report.findings) - 1} more)" if len(report.findings) > 1 else ""
        raise ChecksFailed(f"checks failed, not publishing: {first}{more}", fix="fix the build, or the recipe's checks: thresholds")
    return report
