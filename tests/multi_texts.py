"""mergekit-multi recipe texts shared by the tests of multi-document files (tests/test_multi.py,
tests/hub/test_multi_publish.py, tests/streaming/test_stream_multi.py, tests/release/).

Placeholders ``{a}``, ``{b}``, ``{base}`` are the parents (filled by the test)."""

from __future__ import annotations


def staged(
    stage: str = "acme/blend-ab", final: str = "acme/final", *, layers: int = 32, version: str = "1.0.0", t: float = 0.3
) -> str:
    """A stage named with a repo id (published as its own repo), then the final merge reading it."""
    return f"""\
name: {stage}
merge_method: slerp
base_model: {{a}}
slices:
  - sources:
      - model: {{a}}
        layer_range: [0, {layers}]
      - model: {{b}}
        layer_range: [0, {layers}]
parameters:
  t: {t}
dtype: bfloat16
card: {{license: apache-2.0}}
checks: {{measure: false}}
---
name: {final}
version: {version}
merge_method: linear
models:
  - model: {stage}
    parameters: {{weight: 0.6}}
  - model: {{base}}
    parameters: {{weight: 0.4}}
dtype: bfloat16
card: {{license: apache-2.0}}
checks: {{measure: false}}
"""


STAGED = staged()

# A local stage (mergekit-multi's own kind of name), then the final merge (unnamed) reading it.
MULTI = """\
name: blend-ab
merge_method: slerp
base_model: {a}
slices:
  - sources:
      - model: {a}
        layer_range: [0, 32]
      - model: {b}
        layer_range: [0, 32]
parameters:
  t: 0.3
dtype: bfloat16
---
merge_method: linear
models:
  - model: blend-ab
    parameters: {weight: 0.6}
  - model: {base}
    parameters: {weight: 0.4}
dtype: bfloat16
"""


def fill(text: str, parents: dict[str, str]) -> str:
    for key, value in parents.items():
        text = text.replace("{" + key + "}", value)
    return text
