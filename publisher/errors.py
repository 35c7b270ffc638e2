"""One exception hierarchy for every failure a user can cause or fix.

The CLI prints ``str(error)`` as a single line and exits with ``error.exit_code``;
no traceback ever reaches the user for these. Each error says *where* (file, line,
field, tensor), *what* went wrong and, when there is one, *how to fix it*.
"""

from __future__ import annotations


class PublisherError(Exception):
    """A user-facing failure: bad input (exit 2) or an environment/runtime problem (exit 1)."""

    exit_code: int = 2

    def __init__(
        self, what: str, *, where: str | None = None, fix: str | None = None, exit_code: int | None = None
    ) -> None:
        if exit_code is not None:
            self.exit_code = exit_code
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text = f"{text} ({self.fix})"
        # One line, always: a message that spans lines breaks CI log parsing.
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.line()


class RecipeError(PublisherError):
    """The recipe file is malformed, inconsistent or asks for something unknown."""


class SourceError(PublisherError):
    """A parent model cannot be found, fetched or is in a form we refuse (pickles)."""


class TensorFileError(PublisherError):
    """A safetensors file is corrupt, truncated or inconsistent."""


class MergeError(PublisherError):
    """The merge cannot be computed: mismatched shapes, missing tensors, NaN/Inf results."""


class QuantizeError(PublisherError):
    """The model or tensor cannot be quantized as asked."""


class CardError(PublisherError):
    """The model card cannot be rendered or would be rejected."""


class LicenseError(CardError):
    """The declared license conflicts with an ancestor's license."""


class OutputError(PublisherError):
    """The output location is unusable: exists, not resumable, or not enough disk."""


class PublishError(PublisherError):
    """Publishing was refused or failed; the remote state is unchanged."""

    exit_code = 1


class HubError(PublisherError):
    """The Hub (or the local Hub-compatible server) answered with an error."""

    exit_code = 1


class CatalogError(PublisherError):
    """The catalog cannot be built: no source, an unreachable endpoint, a bad card under --strict."""


class Interrupted(PublisherError):
    """The user interrupted; work done so far is kept for a resume."""

    exit_code = 130
