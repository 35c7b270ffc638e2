"""The evaluation text: the standard library's pydoc topics, so nothing is ever downloaded.

Every Python installation ships ``pydoc_data.topics`` (the language reference's topics as
plain text). We join the topics in sorted order, tokenize a prefix long enough for the
requested number of tokens, and keep the first ``tokens`` ids. The card states the prefix's
sha256, its length and the token count, so anyone can score the same tokens again.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from typing import Any

from publisher.check.results import EvalText
from publisher.lazy import torch


def topics_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip() for key in sorted(topics))


@dataclass(frozen=True)
class Tokens:
    ids: torch.Tensor  # int64 [tokens]
    text: EvalText


def evaluation_tokens(tokenizer: Any, tokens: int) -> Tokens:
    """The first ``tokens`` ids of the topics text under ``tokenizer`` (fewer if the text runs out)."""
    full = topics_text()
    chars = min(len(full), tokens * 8)
    while True:
        prefix = full[:chars]
        ids = list(tokenizer(prefix)["input_ids"])
        # a margin so the prefix's cut never changes the tokens we keep
        if len(ids) >= tokens + 8 or chars >= len(full):
            break
        chars = min(len(full), chars * 2)
    kept = ids[:tokens]
    unk = getattr(tokenizer, "unk_token_id", None)
    unknown = sum(1 for i in kept if unk is not None and i == unk)
    text = EvalText(
        source=f"pydoc_data.topics (Python {platform.python_version()})",
        sha256=hashlib.sha256(prefix.encode("utf-8")).hexdigest(),
        chars=len(prefix),
        tokens=len(kept),
        unknown_tokens=unknown,
    )
    return Tokens(torch.tensor(kept, dtype=torch.int64), text)
