"""Lineage: parents' cards (folders, sibling recipes, the real client over HTTP), gaps, licenses."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cardkit import HUB, RECIPES

from publisher.card.fetchers import FolderFetcher
from publisher.card.licenses import conflict, is_hub_license, license_class, license_problems
from publisher.card.origin import parse_card
from publisher.card.render import render_cards
from publisher.cli import main
from publisher.errors import CardError, LicenseError

TWO_PARENTS = """\
name: acme/merged-7b
version: 0.1.0
merge:
  models:
    - model: {a}
    - model: {b}
  merge_method: slerp
  base_model: {a}
  parameters: {{t: 0.5}}
  dtype: bfloat16
quantize: [{{scheme: fp8-dynamic}}]
card:
{card}
"""


def recipe(tmp_path: Path, a: str, b: str, card: str = "  license: apache-2.0", name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(TWO_PARENTS.format(a=a, b=b, card=card))
    return path


def card(hub: Path, repo: str, front: str, body: str = "# card\n") -> None:
    d = hub / repo
    d.mkdir(parents=True, exist_ok=True)
    (d / "README.md").write_text(f"---\n{front}\n---\n{body}")


# ----------------------------------------------------------------------------- licenses


def test_hub_license_list_and_classes() -> None:
    assert is_hub_license("apache-2.0") and is_hub_license("llama3.1") and is_hub_license("other")
    assert not is_hub_license("Apache-2.0") and not is_hub_license("apache2")
    assert license_class("mit") == "permissive"
    assert license_class("cc-by-nc-4.0") == "non-commercial"
    assert license_class("llama2") == "restrictive-use"
    assert license_class("gpl-3.0") == "copyleft"
    assert license_class("no-such-license") == "other"
    assert conflict("apache-2.0", "mit") is None
    assert conflict("apache-2.0", "cc-by-nc-4.0") is not None
    assert conflict("cc-by-nc-sa-4.0", "cc-by-nc-4.0") is None  # carries every restriction
    assert conflict("cc-by-nc-4.0", "cc-by-nc-sa-4.0") is not None  # loses share-alike
    assert conflict("llama2", "llama2") is None and conflict("llama3", "llama2") is not None
    assert "forbids derivative" in (conflict("cc-by-nd-4.0", "cc-by-nd-4.0") or "")
    assert license_problems("other", "my-license-1.0", "LICENSE") == []
    assert license_problems("other") and license_problems("mit", "x", None)


def test_non_commercial_grandparent_is_caught(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "acme/research-tune", "acme/plain"))
    with pytest.raises(LicenseError) as e:
        render_cards(build, fetcher=FolderFetcher(HUB))
    msg = str(e.value)
    assert "acme/nc-base" in msg and "cc-by-nc-4.0" in msg
    assert "acme/merged-7b → acme/research-tune → acme/nc-base" in msg
    assert "\n" not in msg
    assert not (build / "README.md").exists()  # nothing written
    assert main(["card", str(build), "--cards", str(HUB)]) == 2


def test_acknowledged_conflict_is_shown(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    reason = "Released for research only; the merge inherits cc-by-nc-4.0 terms through acme/nc-base."
    build = make_build(recipe(tmp_path, "acme/research-tune", "acme/plain", f"  license: apache-2.0\n  license_reason: {reason!r}"))
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    assert result.license is not None and [c.node.repo_id for c in result.license.conflicts] == ["acme/nc-base"]
    text = result.cards[0].text
    assert "Publisher's reason: Released for research only" in text
    assert "acme/nc-base (`cc-by-nc-4.0`), via acme/merged-7b → acme/research-tune → acme/nc-base" in text


def test_license_derived_from_agreeing_parents(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "mistralai/Mistral-7B-v0.1", "acme/plain", "  context_length: 4096"))
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    assert result.cards[0].strip.license == "apache-2.0"
    assert "Derived from the parents' licenses" in result.cards[0].text


def test_license_cannot_be_derived_from_disagreeing_parents(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "Equall/Saul-Base", "acme/plain", "  context_length: 4096"))
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    assert any("parents' licenses differ (Equall/Saul-Base: mit, acme/plain: apache-2.0)" in w for w in result.warnings)
    assert result.cards[0].strip.license == "unknown"  # not guessed
    with pytest.raises(LicenseError, match=r"parents' licenses differ \(Equall/Saul-Base: mit, acme/plain: apache-2.0\)"):
        render_cards(build, fetcher=FolderFetcher(HUB), strict=True)


def test_unknown_derived_license_still_meets_the_ancestry_check(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "acme/research-tune", "Equall/Saul-Base", "  context_length: 4096"))
    with pytest.raises(LicenseError, match="license unknown conflicts with ancestor acme/nc-base"):
        render_cards(build, fetcher=FolderFetcher(HUB))


@pytest.mark.parametrize(
    ("card_yaml", "message"),
    [
        ("  license: apache2", "'apache2' is not a license id the Hub accepts"),
        ("  license: other", "license 'other' needs license_name"),
        ("  license: mit\n  license_name: mine", "license_name and license_link go with license 'other' only"),
    ],
)
def test_bad_license_declarations(tmp_path: Path, make_build: Callable[..., Path], card_yaml: str, message: str) -> None:
    build = make_build(recipe(tmp_path, "acme/plain", "mistralai/Mistral-7B-v0.1", card_yaml))
    with pytest.raises(CardError, match=message):
        render_cards(build, fetcher=FolderFetcher(HUB))


def test_custom_license_with_name_and_link(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "acme/plain", "mistralai/Mistral-7B-v0.1",
                              "  license: other\n  license_name: acme-model-license-1.0\n  license_link: LICENSE"))
    from huggingface_hub import ModelCard

    data = ModelCard(render_cards(build, fetcher=FolderFetcher(HUB)).cards[0].text).data
    assert (data.license, data.license_name, data.license_link) == ("other", "acme-model-license-1.0", "LICENSE")


# ----------------------------------------------------------------------------- gaps


def test_unknown_parent_is_shown_unknown_and_strict_fails(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    build = make_build(recipe(tmp_path, "acme/plain", "ghost/not-on-the-hub"))
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    assert any("ghost/not-on-the-hub is unknown" in w for w in result.warnings)
    assert "**unknown** (ghost/not-on-the-hub is not in" in result.cards[0].text
    assert 'n2["ghost/not-on-the-hub (unknown)"]' in result.cards[0].text
    with pytest.raises(CardError, match="strict: ancestry of ghost/not-on-the-hub is unknown"):
        render_cards(build, fetcher=FolderFetcher(HUB), strict=True)
    assert main(["card", str(build), "--strict", "--cards", str(HUB)]) == 2


def test_cycles_and_depth_limit(tmp_path: Path, hub_copy: Path, make_build: Callable[..., Path]) -> None:
    card(hub_copy, "loop/a", "license: apache-2.0\nbase_model: loop/b")
    card(hub_copy, "loop/b", "license: apache-2.0\nbase_model: loop/a")
    for i in range(12):
        card(hub_copy, f"deep/m{i}", f"license: apache-2.0\nbase_model: deep/m{i + 1}")
    build = make_build(recipe(tmp_path, "loop/a", "deep/m0"))
    result = render_cards(build, fetcher=FolderFetcher(hub_copy), max_depth=5)
    assert result.lineage is not None
    a = result.lineage.root.parents[0]
    assert a.parents[0].repo_id == "loop/b" and a.parents[0].parents[0].status == "cycle"
    assert any(w.startswith("lineage cycle: acme/merged-7b → loop/a → loop/b → loop/a") for w in result.warnings)
    node = result.lineage.root.parents[1]
    depth = 1
    while node.parents:
        node, depth = node.parents[0], depth + 1
    assert node.status == "depth-limit" and depth == 6
    assert any("not followed beyond depth 5" in w for w in result.warnings)


def test_card_without_front_matter_and_bad_base_model(tmp_path: Path, hub_copy: Path, make_build: Callable[..., Path]) -> None:
    (hub_copy / "odd/plain-text").mkdir(parents=True)
    (hub_copy / "odd/plain-text/README.md").write_text("just text, no metadata\n")
    card(hub_copy, "odd/bad-base", "license: apache-2.0\nbase_model: ../../etc/passwd")
    build = make_build(recipe(tmp_path, "odd/plain-text", "odd/bad-base", "  license: apache-2.0"))
    result = render_cards(build, fetcher=FolderFetcher(hub_copy))
    assert any("license of ancestor odd/plain-text not checked" in w for w in result.warnings)
    assert any("not a repo id" in w for w in result.warnings)
    assert "../../etc/passwd" not in str(__import__("huggingface_hub").ModelCard(result.cards[0].text).data.base_model)


def test_method_read_from_a_mergekit_config_in_the_repo() -> None:
    text = "---\nbase_model:\n- a/one\n- b/two\ntags: [merge]\n---\nno config here\n"
    files = {"mergekit_config.yml": "merge_method: dare_ties\nbase_model: a/one\nmodels:\n  - model: b/two\n"}
    info = parse_card(text, files.get)
    assert (info.relation, info.method, info.parents) == ("merge", "dare_ties", ["a/one", "b/two"])
    # parents from the config when the card names none
    info = parse_card("---\ntags: [mergekit]\n---\n", files.get)
    assert info.parents == ["a/one", "b/two"] and info.method == "dare_ties"
    # nothing to read: the method stays unknown, not guessed
    info = parse_card(text, None)
    assert (info.relation, info.method) == ("merge", None)


# ----------------------------------------------------------------------------- sources


def test_sibling_recipes_give_the_ancestry(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(RECIPES / "ing_2003m3_slerp.yaml", recipes)
    (recipes / "ing_2003m2_slerp.yaml").write_text(
        (RECIPES / "ing_2003m3_slerp.yaml").read_text()
        .replace("name: MatthieuJ/ING_2003M3_SLERP", "name: MatthieuJ/ING_2003M2_SLERP")
        .replace("MatthieuJ/ING_2003M2_SLERP\n          layer_range", "mistralai/Mistral-7B-Instruct-v0.1\n          layer_range")
    )
    build = make_build(recipes / "ing_2003m3_slerp.yaml", input_kind="recipe")
    empty = tmp_path / "emptyhub"
    for repo in ("chihoonlee10/T3Q-DPO-Mistral-7B", "mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-v0.1"):
        shutil.copytree(HUB / repo, empty / repo)
    result = render_cards(build, fetcher=FolderFetcher(empty), recipes_dir=recipes, strict=True)
    assert result.lineage is not None
    m2 = result.lineage.root.parents[1]
    assert (m2.repo_id, m2.source, m2.relation, m2.method, m2.license) == (
        "MatthieuJ/ING_2003M2_SLERP", "recipe", "merge", "slerp", "apache-2.0",
    )
    assert [p.repo_id for p in m2.parents] == ["chihoonlee10/T3Q-DPO-Mistral-7B", "mistralai/Mistral-7B-Instruct-v0.1"]


def test_newer_card_text_from_the_catalog_recipe(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    src = recipes / "ing.yaml"
    shutil.copy(RECIPES / "ing_2003m3_slerp.yaml", src)
    build = make_build(src)
    src.write_text(src.read_text() + "  summary: A curated summary written after the build.\n")
    text = render_cards(build, fetcher=FolderFetcher(HUB), recipes_dir=recipes).cards[0].text
    assert "A curated summary written after the build." in text
    # a changed merge section is not the recipe that was built: its card text is not used
    src.write_text(src.read_text().replace("value: 0.5", "value: 0.4"))
    result = render_cards(build, fetcher=FolderFetcher(HUB), recipes_dir=recipes)
    assert "A curated summary" not in result.cards[0].text
    assert any("changed its merge since this build" in w for w in result.warnings)


def test_local_parent_folders(tmp_path: Path, make_build: Callable[..., Path]) -> None:
    local = tmp_path / "my-finetune"
    local.mkdir()
    (local / "README.md").write_text("---\nlicense: apache-2.0\nbase_model: mistralai/Mistral-7B-v0.1\n---\n")
    build = make_build(recipe(tmp_path, "./my-finetune", "acme/plain"), local_parents={"./my-finetune": local})
    result = render_cards(build, fetcher=FolderFetcher(HUB))
    assert result.lineage is not None
    p = result.lineage.root.parents[0]
    assert (p.source, p.repo_id, p.license, [q.repo_id for q in p.parents]) == (
        "local", None, "apache-2.0", ["mistralai/Mistral-7B-v0.1"],
    )
    assert any("local folder: it cannot be listed in base_model" in w for w in result.warnings)
    from huggingface_hub import ModelCard

    assert ModelCard(result.cards[0].text).data.base_model == ["acme/plain"]
