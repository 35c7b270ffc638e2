"""The five seed recipes: cards whose strips and bodies carry what the seed pages show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from cardkit import HUB, RECIPES
from huggingface_hub import ModelCard

from publisher.card.fetchers import FolderFetcher
from publisher.card.render import render_cards
from publisher.errors import CardError
from publisher.merge.methods import REGISTRY

# recipe file -> (parents named on the seed page, method as the page names it, published)
SEEDS = {
    "lelanta_lake_7b.yaml": (
        ["s3nh/SeverusWestLake-7B-DPO", "ChaoticNeutrals/Prima-LelantaclesV7-experimental-7b"], "SLERP", None,
    ),
    "ing_2003m3_slerp.yaml": (
        ["chihoonlee10/T3Q-DPO-Mistral-7B", "MatthieuJ/ING_2003M2_SLERP"], "SLERP", date(2024, 3, 20),
    ),
    "saul_mistral_v0_2_7b_slerp.yaml": (
        ["Equall/Saul-Base", "mistralai/Mistral-7B-Instruct-v0.2"], "SLERP", date(2024, 3, 25),
    ),
    "mistral_instruct_slerp.yaml": (
        ["mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-Instruct-v0.2"], "SLERP", date(2024, 1, 10),
    ),
    "mistral_7b_merge_02_v0.yaml": (
        ["teknium/OpenHermes-2.5-Mistral-7B", "Intel/neural-chat-7b-v3-3"], "dare_ties", date(2023, 12, 20),
    ),
}


def pretty(method: str) -> str:
    """How the card names a method: the registry's pretty name (SLERP, DARE TIES, ...)."""
    m = REGISTRY.get(method.lower())
    return m.pretty_name if m is not None and m.pretty_name else method


def md_plain(text: str) -> str:
    """The card text with Markdown backslash escapes removed, as a reader sees it."""
    return text.replace("\\_", "_").replace("\\.", ".")


@pytest.mark.parametrize("recipe", sorted(SEEDS))
def test_seed_cards_carry_the_seed_facts(recipe: str, make_build: Callable[..., Path]) -> None:
    parents, method, published = SEEDS[recipe]
    build = make_build(recipe)
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    merged, fp8 = result.cards
    assert (merged.variant, fp8.variant) == ("merged", "FP8")

    for c, quant in ((merged, "BF16"), (fp8, "FP8")):
        s = c.strip
        assert (s.task, s.size, s.quant, s.context, s.license, s.architecture) == (
            "text-generation", "7B", quant, "4k", "apache-2.0", "Mistral",
        )
        if published:
            assert s.published == published
        assert c.path.read_text() == c.text
        text = md_plain(c.text)
        for p in parents:
            assert p in text
        assert pretty(method) in text
        header = f"| text-generation | 7B (7.24B params) | {quant} | 4k |"
        assert header in text

    data = ModelCard(merged.text).data
    assert data.license == "apache-2.0" and data.library_name == "transformers"
    assert data.pipeline_tag == "text-generation"
    assert data["base_model_relation"] == "merge"
    assert set(parents) <= set(data.base_model)
    fp8_data = ModelCard(fp8.text).data
    assert fp8_data.base_model == merged.repo_id
    assert fp8_data["base_model_relation"] == "quantized"
    assert "fp8" in fp8_data.tags
    assert "vllm serve" in fp8.text and "vllm serve" not in merged.text
    assert "4096 served, 32768 in config" in merged.text


@pytest.mark.parametrize("recipe", ["ing_2003m3_slerp.yaml", "saul_mistral_v0_2_7b_slerp.yaml"])
def test_slerp_gradients_are_shown_as_applied_per_layer(recipe: str, make_build: Callable[..., Path]) -> None:
    text = md_plain(render_cards(make_build(recipe), fetcher=FolderFetcher(HUB), write=False).cards[0].text)
    assert "self_attn: [0, 0.5, 0.3, 0.7, 1], mlp: [1, 0.5, 0.7, 0.3, 0], else: 0.5" in text
    assert "| Layers | self_attn | mlp | other |" in text
    # layer 0: t=0 → self_attn 0, mlp 1; layer 1: t=1/31, scaled=4/31 → 0.5*4/31 = 0.0645
    # summarised by filter and layer range, the per-layer table collapsed behind it
    assert "- **self_attn**: 0 → 0.452 (layers 0–7), 0.494 → 0.313 (layers 8–15), 0.326 → 0.687 (layers 16–23), 0.729 → 1 (layers 24–31)" in text
    assert "- **other**: 0.5 (layers 0–31)" in text
    assert "<details>\n<summary>Per-layer values (32 bands over 32 layers)</summary>" in text
    assert "| 0 | 0 | 1 | 0.5 |" in text
    assert "| 1 | 0.065 | 0.935 | 0.5 |" in text
    assert "| 8 | 0.494 | 0.506 | 0.5 |" in text
    assert "| 31 | 1 | 0 | 0.5 |" in text
    assert "`model.embed_tokens.weight` 0.5" in text


def test_dare_ties_card_shows_weights_densities_and_the_comparison(make_build: Callable[..., Path]) -> None:
    result = render_cards(make_build("mistral_7b_merge_02_v0.yaml"), fetcher=FolderFetcher(HUB))
    merged, fp8 = result.cards
    text = md_plain(merged.text)
    for model in ("teknium/OpenHermes-2.5-Mistral-7B", "Intel/neural-chat-7b-v3-3"):
        assert f"`weight` of {model} = **0.5** for every tensor" in text
        assert f"`density` of {model} = **0.5** for every tensor" in text
    assert "`density` of mistralai/Mistral-7B-v0.1" not in text  # not applied to the base
    # every column is headed by (and links) the model its numbers were measured on
    link = "[{0}](https://huggingface.co/{0})"
    assert (
        f"| Task | Metric | Shots | {link.format('EmbeddedLLM/Mistral-7B-Merge-02-v0')} "
        f"| {link.format('Weyaxi/OpenHermes-2.5-neural-chat-v3-3-Slerp')} |" in text
    )
    assert "| average | acc | — | 70.69 | 71.38 |" in text
    assert "| MMLU | acc | 5-shot | 64.1 | 64.26 |" in text
    assert "| TruthfulQA | mc2 | 0-shot | 60.52 | 62.78 |" in text
    leaderboard = "[Open LLM Leaderboard](https://huggingface.co/spaces/open-llm-leaderboard-old/open_llm_leaderboard)"
    assert f"{link.format('EmbeddedLLM/Mistral-7B-Merge-02-v0')}: {leaderboard} (2023-12-21)" in text
    data = ModelCard(merged.text).data
    # the model-index names datasets (the average is not one) and the source of each number
    assert [(r.dataset_name, r.dataset_type, r.metric_type, r.metric_value, r.source_name) for r in data.eval_results] == [
        ("MMLU", "cais/mmlu", "acc", 64.1, "Open LLM Leaderboard"),
        ("TruthfulQA", "truthfulqa/truthful_qa", "mc2", 60.52, "Open LLM Leaderboard"),
    ]
    # the FP8 copy was not evaluated: its table is headed by the merged model, no model-index
    fp8_text = md_plain(fp8.text)
    assert "No number below was measured on this FP8 copy" in fp8_text
    assert f"| Task | Metric | Shots | {link.format('EmbeddedLLM/Mistral-7B-Merge-02-v0')} |" in fp8_text
    assert "Mistral-7B-Merge-02-v0-FP8 |" not in fp8_text.split("## Evaluation")[1].split("## Intended")[0]
    assert ModelCard(fp8.text).data.eval_results is None
    # creator and original publish date: strip, body and front matter
    assert "| apache-2.0 | Mistral | EmbeddedLLM |" in text
    assert ModelCard(merged.text).data["model_creator"] == "EmbeddedLLM"
    assert merged.strip.creator == fp8.strip.creator == "EmbeddedLLM"


def test_fp8_card_counts_the_models_parameters_and_the_merged_card_links_it(make_build: Callable[..., Path]) -> None:
    merged, fp8 = render_cards(make_build("lelanta_lake_7b.yaml"), fetcher=FolderFetcher(HUB), write=False).cards
    # the scales are stored but are not parameters: both variants are the same 7.24B model
    assert fp8.facts.parameter_count == merged.facts.parameter_count == 7_241_732_096
    assert fp8.facts.scale_count == 32 * (3 * 4096 + 2 * 1024 + 2 * 14336)
    assert "quantization scales are not parameters" in fp8.text
    assert "- **Other variants:**\n  - [Nitral-Archive/Lelanta-lake-7b-FP8](https://huggingface.co/Nitral-Archive/Lelanta-lake-7b-FP8)" in merged.text
    assert "  - [Nitral-Archive/Lelanta-lake-7b](https://huggingface.co/Nitral-Archive/Lelanta-lake-7b) (the BF16 merge)" in fp8.text
    # the creator defaults to the namespace; no re-publication date unless the recipe gives one
    assert merged.strip.creator == "Nitral-Archive" and merged.strip.original_published is None
    assert "- **Created by:** Nitral-Archive\n" in merged.text


def test_assumed_values_are_said_to_be_assumed(make_build: Callable[..., Path], tmp_path: Path) -> None:
    text = md_plain(render_cards(make_build("saul_mistral_v0_2_7b_slerp.yaml"), fetcher=FolderFetcher(HUB), write=False).cards[0].text)
    assert "(**assumed**, not from the original: the original page gives the t curves only as ranges" in text
    # a recipe naming a parameter the merge does not have is refused, naming the field
    recipe = (RECIPES / "saul_mistral_v0_2_7b_slerp.yaml").read_text().replace("  assumed:\n    t:", "  assumed:\n    weight:")
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe)
    with pytest.raises(CardError, match=r"card.assumed.weight is not a parameter of this merge \(its parameters: t\)"):
        render_cards(make_build(bad), fetcher=FolderFetcher(HUB), write=False)


def test_ing_lineage_shows_the_parent_merge_and_its_parents(make_build: Callable[..., Path]) -> None:
    result = render_cards(make_build("ing_2003m3_slerp.yaml"), fetcher=FolderFetcher(HUB))
    assert result.lineage is not None and result.warnings == []
    m2 = next(p for p in result.lineage.root.parents if p.repo_id == "MatthieuJ/ING_2003M2_SLERP")
    assert (m2.relation, m2.method, m2.source) == ("merge", "slerp", "hub")
    assert [p.repo_id for p in m2.parents] == ["chihoonlee10/T3Q-DPO-Mistral-7B", "mistralai/Mistral-7B-Instruct-v0.2"]
    assert [p.repo_id for p in m2.parents[1].parents] == ["mistralai/Mistral-7B-v0.1"]
    text = md_plain(result.cards[0].text)
    assert (
        "  - [MatthieuJ/ING_2003M2_SLERP](https://huggingface.co/MatthieuJ/ING_2003M2_SLERP) @ `7bb4f1c9ecb1`: merge (`slerp`)"
        in text
    )
    assert "    - [mistralai/Mistral-7B-Instruct-v0.2](https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.2): fine-tune" in text
    assert 'n3 -->|"slerp"| n0' in text  # the mermaid graph
    fp8 = md_plain(result.cards[1].text)
    assert "- **MatthieuJ/ING_2003M3_SLERP-FP8** (this model): quantized" in fp8
    assert "  - [MatthieuJ/ING_2003M3_SLERP](https://huggingface.co/MatthieuJ/ING_2003M3_SLERP): merge (`slerp`)" in fp8


@pytest.mark.parametrize("recipe", sorted(SEEDS))
def test_cards_are_deterministic(recipe: str, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe)
    first = [c.text for c in render_cards(build, fetcher=FolderFetcher(HUB)).cards]
    before = [(build / "README.md").read_bytes(), (build / "variants/FP8/README.md").read_bytes()]
    second = [c.text for c in render_cards(build, fetcher=FolderFetcher(HUB)).cards]
    assert first == second
    assert before == [(build / "README.md").read_bytes(), (build / "variants/FP8/README.md").read_bytes()]
    # a second build of the same recipe, elsewhere, gives the same bytes
    other = make_build(recipe)
    assert [c.text for c in render_cards(other, fetcher=FolderFetcher(HUB), write=False).cards] == first


REPO_RECIPES = {
    "ING_2003M3_SLERP.yaml": "ing_2003m3_slerp.yaml",
    "Lelanta-lake-7b.yaml": "lelanta_lake_7b.yaml",
    "Mistral-7B-Merge-02-v0.yaml": "mistral_7b_merge_02_v0.yaml",
    "mistral-instruct-slerp.yaml": "mistral_instruct_slerp.yaml",
    "saul-mistral-v0.2-7b-slerp.yaml": "saul_mistral_v0_2_7b_slerp.yaml",
}
REPO_RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("recipe", sorted(REPO_RECIPES))
def test_the_repository_seed_recipes_give_the_seed_strips(recipe: str, make_build: Callable[..., Path]) -> None:
    """The catalog's own recipes (recipes/*.yaml), not only this suite's copies."""
    parents, method, _published = SEEDS[REPO_RECIPES[recipe]]
    result = render_cards(make_build(REPO_RECIPE_DIR / recipe), fetcher=FolderFetcher(HUB), recipes_dir=REPO_RECIPE_DIR)
    for c, quant in zip(result.cards, ("BF16", "FP8"), strict=True):
        s = c.strip
        assert (s.size, s.quant, s.context, s.license, s.architecture) == ("7B", quant, "4k", "apache-2.0", "Mistral")
        text = md_plain(c.text)
        assert all(p in text for p in parents) and pretty(method) in text


def test_same_bytes_whatever_the_hash_seed(make_build: Callable[..., Path]) -> None:
    """No set or dict ordering leaks into the card: two processes, two hash seeds, one card."""
    import os
    import subprocess
    import sys

    build = make_build("ing_2003m3_slerp.yaml")
    code = (
        "import sys; from pathlib import Path; from publisher.card.render import render_cards; "
        "from publisher.card.fetchers import FolderFetcher; "
        "sys.stdout.write(''.join(c.text for c in render_cards(Path(sys.argv[1]), "
        "fetcher=FolderFetcher(Path(sys.argv[2])), write=False).cards))"
    )
    root = Path(__file__).resolve().parents[2]
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        outs.append(subprocess.run([sys.executable, "-c", code, str(build), str(HUB)], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0] == outs[1] and outs[0].startswith("---\n")


def test_publisher_card_writes_the_curators_facts(make_build: Callable[..., Path]) -> None:
    """Through the real command: labelled evaluations, .eval_results/, creator, sizes that agree."""
    from publisher.cli import main

    build = make_build("mistral_7b_merge_02_v0.yaml")
    assert main(["card", str(build), "--cards", str(HUB), "--published", "2026-12-01"]) == 0
    merged = (build / "README.md").read_text()
    fp8 = (build / "variants/FP8/README.md").read_text()
    # the BF16 merge and its FP8 copy state one size (the scales are not parameters)
    assert "| text-generation | 7B (7.24B params) | BF16 |" in merged
    assert "| text-generation | 7B (7.24B params) | FP8 |" in fp8
    # a re-publication: this version's date, the original's first publish date and creator
    assert "| Dec 1, 2026 (first published Dec 20, 2023) | apache-2.0 | Mistral | EmbeddedLLM |" in merged
    assert "- **Created by:** EmbeddedLLM; first published Dec 20, 2023" in fp8
    assert sorted(p.name for p in (build / ".eval_results").iterdir()) == ["mmlu.yaml", "truthfulqa_mc2.yaml"]
    assert "cais/mmlu" in (build / ".eval_results/mmlu.yaml").read_text()
    assert not (build / "variants/FP8/.eval_results").exists()
    assert "No number below was measured on this FP8 copy" in fp8
