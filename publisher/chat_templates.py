"""``chat_template:`` in a recipe: a name mergekit 0.1.5 knows, ``auto``, or a Jinja string.

A name means that prompt format. The templates below are ours, written from the formats
(tests/fixtures/chat_templates.json holds mergekit's renderings of a few conversations, and
tests check that transformers' ``apply_chat_template`` gives the same strings with these).
They render exactly what mergekit's files render under transformers' Jinja settings
(``trim_blocks``, ``lstrip_blocks``), odd whitespace included (exaone's indentation), so a
merge published by either tool prompts the same. ``auto`` is the most common template among
the parents (none: the tokenizer source's own is kept); anything else must look like a
template (mergekit refuses strings under 20 characters or without ``{``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

ALPACA = (
    "{%- set systems = messages | selectattr('role', 'equalto', 'system') | list -%}"
    "{{- (systems | last).content | trim if systems else '' -}}"
    "{{- '\\n\\n' -}}"
    "{%- set heads = {'user': '### Instruction:\\n', 'assistant': '### Response:\\n', 'user_context': '### Input:\\n'} -%}"
    "{%- for m in messages -%}"
    "{%- if m.role in heads -%}"
    "{{- heads[m.role] + (m.content | trim) -}}"
    "{%- if not loop.last -%}{{- '\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt and messages[-1].role != 'assistant' -%}{{- '### Response:\\n' -}}{%- endif -%}"
)

CHATML = (
    "{%- for m in messages -%}"
    "{{- '<|im_start|>' ~ m.role ~ '\\n' ~ m.content ~ '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

EXAONE = (
    "{%- for m in messages -%}"
    "{%- if loop.first and m.role != 'system' -%}{{- '        [|system|][|endofturn|]\\n\\n' -}}{%- endif -%}"
    "{{- '    [|' ~ m.role ~ '|]' ~ m.content ~ '\\n' -}}"
    "{{- '        \\n\\n' if m.role == 'user' else '        [|endofturn|]\\n\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '    [|assistant|]\\n' -}}{%- endif -%}"
)

LLAMA3 = (
    "{%- for m in messages -%}"
    "{{- (bos_token if loop.first else '') ~ '<|start_header_id|>' ~ m.role ~ '<|end_header_id|>\\n\\n' -}}"
    "{{- (m.content | trim) ~ '<|eot_id|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)

MISTRAL = (
    "{%- set has_system = messages and messages[0].role == 'system' -%}"
    "{%- set turns = messages[1:] if has_system else messages -%}"
    "{{- bos_token -}}"
    "{%- for m in turns -%}"
    "{%- if (m.role == 'user') != (loop.index0 is even) -%}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') -}}"
    "{%- endif -%}"
    "{%- if m.role == 'user' -%}"
    "{{- ' [INST] ' ~ (messages[0].content ~ '\\n\\n' if loop.first and has_system else '') ~ m.content ~ ' [/INST]' -}}"
    "{%- elif m.role == 'assistant' -%}"
    "{{- ' ' ~ m.content ~ eos_token -}}"
    "{%- else -%}"
    "{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

NAMED: dict[str, str] = {"alpaca": ALPACA, "chatml": CHATML, "exaone": EXAONE, "llama3": LLAMA3, "mistral": MISTRAL}


def template_problem(value: str) -> str | None:
    """Why mergekit would refuse this ``chat_template`` value, or None.

    mergekit 0.1.5 takes a name of its package data, ``auto``, or a string of at least 20
    characters with a ``{``; anything else ("base", "none", "ChatML") is its "Invalid chat
    template" (after the merge: the tokenizer is then not written at all)."""
    if value in NAMED or value == "auto":
        return None
    if len(value) < 20 or "{" not in value:
        return (
            f"unknown chat template '{value}' (mergekit 0.1.5 refuses it): use one of {', '.join(sorted(NAMED))}, "
            "auto, or a Jinja template (at least 20 characters); leave chat_template out to keep the tokenizer's own"
        )
    return None


def parent_template(folder: Path) -> str | None:
    """A parent's chat template, as transformers would load it (the ``default`` of a list)."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    try:
        cfg = json.loads((folder / "tokenizer_config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    template = cfg.get("chat_template")
    if isinstance(template, list):
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
    return template if isinstance(template, str) and template else None


def resolve_template(value: str | None, parents: list[Path]) -> str | None:
    """The template to write, or None to keep the tokenizer source's own."""
    if value is None:
        return None
    if value == "auto":
        found = [t.strip() for p in parents if (t := parent_template(p))]
        return Counter(found).most_common(1)[0][0] if found else None
    return NAMED.get(value, value)
