"""The offline check a card passes before it is written or uploaded: what the Hub would reject."""

from __future__ import annotations

from typing import Any

from publisher.card.licenses import license_problems
from publisher.errors import CardError

RELATIONS = ("merge", "quantized", "finetune", "adapter")
LANGUAGE_SPECIAL = ("code", "multilingual")


def validate_card_text(text: str, where: str) -> Any:
    """Parse and check a card the way the Hub would, offline; returns the ModelCard.

    huggingface_hub parses the front matter (and the model-index); we check what it leaves
    to the Hub: the license id, base_model repo ids, base_model_relation, language codes.
    """
    from huggingface_hub import ModelCard
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not text.startswith("---\n"):
        raise CardError("the card does not start with a YAML front matter block", where=where)
    try:
        card = ModelCard(text)
    except ValueError as e:
        raise CardError(f"front matter rejected by huggingface_hub: {' '.join(str(e).split())[:300]}", where=where) from None
    data = card.data.to_dict()
    for problem in license_problems(data.get("license"), data.get("license_name"), data.get("license_link")):
        raise CardError(problem, where=f"{where}: license")
    bases = data.get("base_model")
    for repo in [bases] if isinstance(bases, str) else (bases or []):
        try:
            if not isinstance(repo, str):
                raise HFValidationError(f"{repo!r} is not a string")
            validate_repo_id(repo)
            if "/" not in repo:
                raise HFValidationError("a base model must be 'namespace/name'")
        except HFValidationError as e:
            raise CardError(f"base_model {repo!r} is not a valid repo id ({e})", where=f"{where}: base_model") from None
    relation = data.get("base_model_relation")
    if relation is not None and relation not in RELATIONS:
        raise CardError(f"base_model_relation {relation!r} is not one of {', '.join(RELATIONS)}", where=where)
    if relation is not None and not bases:
        raise CardError("base_model_relation without base_model", where=where)
    langs = data.get("language")
    for lang in [langs] if isinstance(langs, str) else (langs or []):
        if not (isinstance(lang, str) and (lang in LANGUAGE_SPECIAL or (lang.isascii() and lang.isalpha() and lang.islower() and 2 <= len(lang) <= 3))):
            raise CardError(
                f"language {lang!r} is not an ISO 639-1/2/3 code", where=f"{where}: language",
                fix="use codes like en, fr, deu, or 'code' / 'multilingual'",
            )
    for tag in data.get("tags") or []:
        if not isinstance(tag, str) or not tag.strip() or any(c in tag for c in "\n\r\t"):
            raise CardError(f"tag {tag!r} is not a one-line string", where=f"{where}: tags")
    return card
