"""catalog.json and the site from local builds: the seed catalog, versions, bad input, templates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cardkit import HUB, RECIPES, make_build_dir
from catalogkit import SEED_REPOS

from publisher.card import build_strips
from publisher.card.fetchers import FolderFetcher
from publisher.card.render import render_cards
from publisher.catalog import CatalogResult, build_catalog, collect_catalog
from publisher.catalog.schema import CATALOG_FILE, Catalog
from publisher.errors import CatalogError

# what the seed pages (shared/seeds/*.txt) say about each model: method and parents
SEED_ORIGINS = {
    "MatthieuJ/ING_2003M3_SLERP": ("slerp", ["chihoonlee10/T3Q-DPO-Mistral-7B", "MatthieuJ/ING_2003M2_SLERP"]),
    "Nitral-Archive/Lelanta-lake-7b": ("slerp", ["s3nh/SeverusWestLake-7B-DPO", "ChaoticNeutrals/Prima-LelantaclesV7-experimental-7b"]),
    "EmbeddedLLM/Mistral-7B-Merge-02-v0": (
        "dare_ties",
        ["mistralai/Mistral-7B-v0.1", "teknium/OpenHermes-2.5-Mistral-7B", "Intel/neural-chat-7b-v3-3"],
    ),
    "osanseviero/mistral-instruct-slerp": ("slerp", ["mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-Instruct-v0.1"]),
    "arcee-ai/saul-mistral-v0.2-7b-slerp": ("slerp", ["mistralai/Mistral-7B-Instruct-v0.2", "Equall/Saul-Base"]),
}


def test_seed_catalog_has_every_model_and_variant_with_the_card_stages_strip(seed_site: CatalogResult, seed_builds: Path) -> None:
    catalog = seed_site.catalog
    ids = [e.repo_id for e in catalog.models]
    expected = sorted([*SEED_REPOS, *(f"{r}-FP8" for r in SEED_REPOS)], key=str.casefold)
    assert ids == expected
    assert seed_site.warnings == [] and catalog.skipped == []
    for build in sorted(seed_builds.iterdir()):
        strips = build_strips(build)  # the card stage's own strips of this build
        merged = json.loads((build / "manifest.json").read_text())["variants"]
        for v in merged:
            entry = catalog.entry(v["repo_id"])
            assert entry.strip == strips[v["name"]], v["repo_id"]
    # the seed pages' header line: TEXT GENERATION, 7B, FP8, 4k, apache-2.0
    fp8 = catalog.entry("MatthieuJ/ING_2003M3_SLERP-FP8")
    assert fp8.strip_line == (
        "TEXT GENERATION · Model Size: 7B · Quant: FP8 · Ctx Length: 4k · Published: Mar 20, 2024 "
        "· License: apache-2.0 · Architecture: Mistral · Creator: MatthieuJ"
    )
    assert (fp8.variant, fp8.quantized, fp8.strip.params) == ("FP8", True, "7.24B")
    assert fp8.facts.quantization is not None and fp8.facts.quantization.scheme == "fp8-dynamic"
    assert fp8.facts.context_served == 4096 and fp8.facts.context_config == 32768


def test_method_parents_and_variants_follow_the_cards(seed_site: CatalogResult) -> None:
    catalog = seed_site.catalog
    for repo, (method, parents) in SEED_ORIGINS.items():
        merged, fp8 = catalog.entry(repo), catalog.entry(f"{repo}-FP8")
        assert (merged.method, merged.relation, merged.parents) == (method, "merge", parents)
        assert (fp8.method, fp8.relation, fp8.parents, fp8.family) == (method, "quantized", [repo], repo)
        for e in (merged, fp8):  # bf16 <-> FP8 link both ways, the merged model first
            assert [(v.repo_id, v.variant) for v in e.variants] == [(repo, "BF16"), (f"{repo}-FP8", "FP8")]
        assert merged.license == "apache-2.0" and "merge" in merged.tags
        assert merged.versions[0].version == "1.0.0" and merged.versions[0].commit is None


def test_lineage_follows_the_parents_cards(seed_site: CatalogResult) -> None:
    entry = seed_site.catalog.entry("MatthieuJ/ING_2003M3_SLERP-FP8")
    by_label = {n.label: n for n in entry.lineage.nodes}
    ids = {n.id: n.label for n in entry.lineage.nodes}
    edges = {(ids[a], ids[b]) for a, b in entry.lineage.edges}
    assert by_label["MatthieuJ/ING_2003M3_SLERP-FP8"].is_root
    assert ("MatthieuJ/ING_2003M3_SLERP", "MatthieuJ/ING_2003M3_SLERP-FP8") in edges
    assert ("MatthieuJ/ING_2003M2_SLERP", "MatthieuJ/ING_2003M3_SLERP") in edges
    assert ("mistralai/Mistral-7B-Instruct-v0.2", "MatthieuJ/ING_2003M2_SLERP") in edges  # read from M2's card
    assert ("mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2") in edges
    assert by_label["MatthieuJ/ING_2003M3_SLERP"].page == "models/MatthieuJ--ING_2003M3_SLERP.html"
    assert by_label["MatthieuJ/ING_2003M2_SLERP"].page is None  # not in the catalog
    assert entry.lineage.gaps == []


def test_without_the_parents_cards_the_gaps_are_named(seed_builds: Path) -> None:
    catalog = collect_catalog(builds=seed_builds).catalog
    entry = catalog.entry("EmbeddedLLM/Mistral-7B-Merge-02-v0")
    assert entry.lineage.gaps == [
        f"{p}: {p} is not among the builds or their parents" for p in SEED_ORIGINS[entry.repo_id][1]
    ]
    assert {n.status for n in entry.lineage.nodes if not n.is_root} == {"unknown"}


def test_site_is_deterministic_and_complete(seed_site: CatalogResult, seed_builds: Path, tmp_path: Path) -> None:
    assert seed_site.out is not None and seed_site.index == seed_site.out / "index.html"
    again = build_catalog(tmp_path / "again", builds=seed_builds, cards_dir=HUB)
    assert again.out is not None
    first = sorted(p.relative_to(seed_site.out).as_posix() for p in seed_site.out.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.out).as_posix() for p in again.out.rglob("*") if p.is_file())
    assert first == second == sorted(["catalog.json", "index.html", *(e.page for e in seed_site.catalog.models)])
    for rel in first:
        assert (seed_site.out / rel).read_bytes() == (again.out / rel).read_bytes(), rel
    data = Catalog.model_validate_json((seed_site.out / CATALOG_FILE).read_text())
    assert data == seed_site.catalog
    index = (seed_site.out / "index.html").read_text()
    assert "<script src" not in index and "<link rel=\"stylesheet\"" not in index and "src=\"http" not in index
    # the only addresses elsewhere are links to parents' pages on the Hub (never loaded)
    assert set(re.findall(r'(\S+)="https://', index)) == {"href"}
    assert 'href="https://huggingface.co/Equall/Saul-Base" rel="external">Equall/Saul-Base</a>' in index
    page = (seed_site.out / "models/MatthieuJ--ING_2003M3_SLERP.html").read_text()
    assert 'href="../models/MatthieuJ--ING_2003M3_SLERP-FP8.html"' in page  # the FP8 variant
    assert '<svg id="lineage-graph"' in page and ">ING_2003M2_SLERP</text>" in page
    assert "<h3>Overview</h3>" in page  # the card, its headings one level down
    assert "<script" not in page  # model pages need no script at all


def _bump(build: Path, out: Path, version: str, day: int) -> Path:
    recipe = RECIPES / "mistral_instruct_slerp.yaml"
    text = recipe.read_text().replace("version: 1.0.0", f"version: {version}")
    make_build_dir(out, recipe, recipe_text=text, created=datetime(2024, 5, day, tzinfo=UTC))
    render_cards(out, fetcher=FolderFetcher(HUB))
    return out


def test_several_builds_of_one_model_are_its_versions(tmp_path: Path) -> None:
    for version, day in (("1.0.0", 1), ("1.10.0", 9), ("1.2.0", 5)):
        _bump(tmp_path, tmp_path / "builds" / f"v{version}", version, day)
    catalog = collect_catalog(builds=tmp_path / "builds").catalog
    assert [e.repo_id for e in catalog.models] == ["osanseviero/mistral-instruct-slerp", "osanseviero/mistral-instruct-slerp-FP8"]
    entry = catalog.models[0]
    assert [v.version for v in entry.versions] == ["1.10.0", "1.2.0", "1.0.0"]
    assert entry.strip.version == "1.10.0" and str(entry.strip.published) == "2024-05-09"
    assert entry.source.endswith("v1.10.0")


def _copy_build(seed_builds: Path, tmp_path: Path, *names: str) -> Path:
    """Fresh seed builds (never copied: a copy would fill the sparse 7B shards with real zeros)."""
    root = tmp_path / "builds"
    for name in names:
        out = make_build_dir(root / name, RECIPES / f"{name}.yaml")
        render_cards(out, fetcher=FolderFetcher(HUB), recipes_dir=RECIPES)
    return root


def test_a_malformed_card_is_skipped_with_a_warning_or_fails_under_strict(
    seed_builds: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    root = _copy_build(seed_builds, tmp_path, "ing_2003m3_slerp", "lelanta_lake_7b")
    card = root / "lelanta_lake_7b" / "README.md"
    card.write_text(card.read_text().replace("license: apache-2.0", "license: [apache-2.0\n", 1))
    warned: list[str] = []
    result = collect_catalog(builds=root, warn=warned.append)
    assert [e.repo_id for e in result.catalog.models] == [
        "MatthieuJ/ING_2003M3_SLERP", "MatthieuJ/ING_2003M3_SLERP-FP8", "Nitral-Archive/Lelanta-lake-7b-FP8",
    ]
    assert len(warned) == 1 and warned[0].startswith("skipped Nitral-Archive/Lelanta-lake-7b: malformed card")
    with pytest.raises(CatalogError, match="strict: Nitral-Archive/Lelanta-lake-7b: malformed card"):
        collect_catalog(builds=root, strict=True)
    r = cli("catalog", "--builds", root, "--out", tmp_path / "site", "--strict")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "malformed card" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "site").exists()
    r = cli("catalog", "--builds", root, "--out", tmp_path / "site")
    assert r.code == 0 and "warning: skipped Nitral-Archive/Lelanta-lake-7b" in r.err
    assert (tmp_path / "site" / "index.html").is_file()


def test_empty_or_missing_source_is_one_line_and_exit_2(tmp_path: Path, cli: Callable[..., Any]) -> None:
    (tmp_path / "empty").mkdir()
    for source, words in ((tmp_path / "empty", "no builds found"), (tmp_path / "nope", "--builds is not a folder")):
        r = cli("catalog", "--builds", source, "--out", tmp_path / "site")
        assert r.code == 2, r
        assert words in r.err and len(r.err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:  # argparse: one source or the other
        cli("catalog", "--builds", tmp_path / "empty", "--endpoint", "http://127.0.0.1:9", "--out", tmp_path / "s")
    assert exit_info.value.code == 2


def test_out_must_be_new_or_a_catalog(seed_builds: Path, tmp_path: Path) -> None:
    root = _copy_build(seed_builds, tmp_path, "mistral_instruct_slerp")
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(CatalogError, match="not a catalog"):
        build_catalog(home, builds=root)
    assert (home / "notes.txt").read_text() == "mine"
    site = tmp_path / "site"
    build_catalog(site, builds=root)
    (site / "stale.html").write_text("old")
    build_catalog(site, builds=root)  # replaced whole: nothing stale survives
    assert not (site / "stale.html").exists() and (site / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builds", "home", "site"]  # no .partial left


def test_template_dir_overrides_and_bad_templates_fail_cleanly(seed_builds: Path, tmp_path: Path, cli: Callable[..., Any]) -> None:
    root = _copy_build(seed_builds, tmp_path, "mistral_instruct_slerp")
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "model.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}<p id="mine">{{ model.repo_id }} · {{ model.summary }}'
        "</p>{{ card_html }}{% endblock %}"
    )
    build_catalog(tmp_path / "site", builds=root, template_dir=tpl)
    page = (tmp_path / "site/models/osanseviero--mistral-instruct-slerp.html").read_text()
    assert '<p id="mine">osanseviero/mistral-instruct-slerp · ' in page
    assert "Model catalog" in page  # the built-in base still frames it
    (tpl / "base.html.j2").write_text(
        '{% extends "builtin/base.html.j2" %}{% block style %}{{ super() }} body { background: #fffbe6; }{% endblock %}'
    )
    build_catalog(tmp_path / "site", builds=root, template_dir=tpl)
    index = (tmp_path / "site/index.html").read_text()
    assert "body { background: #fffbe6; }" in index and ".strip {" in index and 'id="filters"' in index
    (tpl / "model.html.j2").write_text("{% block content %}{{ model.no_such_field }}{% endblock %}")
    r = cli("catalog", "--builds", root, "--out", tmp_path / "site2", "--template-dir", tpl)
    assert r.code == 2 and "undefined variable" in r.err and "model.html.j2" in r.err
    (tpl / "model.html.j2").write_text("{% block content %}{% endblock")
    r = cli("catalog", "--builds", root, "--out", tmp_path / "site2", "--template-dir", tpl)
    assert r.code == 2 and "template syntax error" in r.err and "model.html.j2:1" in r.err
    assert not (tmp_path / "site2").exists()


def test_untrusted_card_text_cannot_act_on_the_page(seed_builds: Path, tmp_path: Path) -> None:
    root = _copy_build(seed_builds, tmp_path, "mistral_instruct_slerp")
    card = root / "mistral_instruct_slerp" / "README.md"
    evil = (
        '<script>alert(1)</script> <img src=x onerror="alert(2)"> </main></body>\n\n'
        "See [click](javascript:alert(3)) and ![tracker](https://example.com/pixel.png) <b>bold <i>open"
    )
    text = card.read_text()
    body_start = text.index("\n---\n", 4) + 5
    card.write_text(text[:body_start] + "\n" + evil + "\n\n" + text[body_start:])
    build_catalog(tmp_path / "site", builds=root)
    index = (tmp_path / "site/index.html").read_text()
    page = (tmp_path / "site/models/osanseviero--mistral-instruct-slerp.html").read_text()
    for html in (index, page):
        assert "<script>alert" not in html and "<img" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as the text it is
    assert "</main></body>" not in page.split('<article class="card">')[1].split("</article>")[0]
    assert '<a class="image-ref" href="https://example.com/pixel.png"' in page  # a link, never loaded
    assert "<b>bold <i>open</i></b></p>" in page  # allowed tags, closed where their paragraph ends
    entry = Catalog.model_validate_json((tmp_path / "site/catalog.json").read_text()).models[0]
    assert entry.summary == "See [click](javascript:alert(3)) and tracker bold open"  # the first paragraph, as text
    data = json.loads(index.split('<script type="application/json" id="catalog-data">')[1].split("</script>")[0])
    assert "[click](javascript:alert(3))" in data[0]["text"]
