"""The card stage on a real build: the engine's output (merged + same-pass FP8), not a fixture."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard

from publisher.build import BuildOptions, build
from publisher.card.render import render_cards
from publisher.demo import EXAMPLE, generate_standin


def test_publisher_build_writes_cards_with_facts_from_its_output(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(EXAMPLE.read_text().replace("card:", "card:\n  context_length: 2048", 1))
    parents = {r: generate_standin(r, tmp_path / "parents") for r in ("publisher-demo/tiny-parent-a", "publisher-demo/tiny-parent-b")}
    out = build(recipe, tmp_path / "out", BuildOptions(quiet=True), recipe_outputs=parents).out
    merged = (out / "README.md").read_text()
    fp8 = (out / "variants/FP8/README.md").read_text()
    assert "| text-generation | 78.9K (78.9K params) | BF16 | 2k |" in merged
    assert "| FP8 | 2k |" in fp8 and "weights FP8 E4M3, per-channel scales" in fp8
    assert "2048 served, 32768 in config" in fp8
    data = ModelCard(fp8).data
    assert (data.base_model, data["base_model_relation"]) == ("publisher-demo/tiny-slerp", "quantized")
    # the stand-in parents' own cards (in their folders) give their license to the lineage
    assert "[publisher-demo/tiny-parent-a](https://huggingface.co/publisher-demo/tiny-parent-a); license `apache-2.0`" in merged
    # re-rendering the finished build gives the same bytes
    again = render_cards(out)
    assert [c.text for c in again.cards] == [merged, fp8]
