"""The catalog site in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Opened from file:// with no server: the index lists every model with its strip, the filters
and the search narrow it, a model page shows its lineage, variants and versions, nothing is
fetched from anywhere, and the console stays clean. Screenshots of both pages at 1400 and
420 px go to ``test-artifacts/`` for people to look at; at both widths the page must not
scroll sideways, and no page may print a loopback address.

Needs ``apt-get install chromium`` and ``pip install playwright`` (never ``playwright install``:
the system browser is used); without them the tests skip and say which is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from catalogkit import ARTIFACTS, CHROMIUM_ARGS, Published, chromium

from publisher.catalog import CatalogResult, build_catalog
from publisher.catalog.schema import CatalogEntry
from publisher.hub.remote import Retry


class PageWatch:
    """Everything a page logs or fetches: the test fails on any console error or non-local request."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def check(self) -> None:
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith("file://")] == []


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = chromium()
    if exe is None:
        pytest.skip("no chromium binary at /usr/bin/chromium (apt-get install -y chromium) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def _visible_repos(page: Any) -> list[str]:
    return [str(r) for r in page.eval_on_selector_all("#models > li:not([hidden])", "els => els.map(e => e.dataset.repo)")]


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("window.innerWidth"), f"the page scrolls sideways ({width}px)"


def _no_loopback(page: Any) -> None:
    html = page.content()
    for needle in ("127.0.0.1", "localhost", "[::1]"):
        assert needle not in html


def screenshots(page: Any, name: str) -> None:
    """Full-page screenshots at 1400 and 420 px, each checked for sideways scroll and loopback."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 900})
        _no_sideways_scroll(page)
        _no_loopback(page)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _check_row(row: Any, e: CatalogEntry) -> None:
    s = e.strip
    assert row.locator(".strip .task").inner_text() == "TEXT GENERATION"
    fields = {f: row.locator(f'.strip [data-field="{f}"]').inner_text() for f in
              ("size", "quant", "context", "published", "license", "architecture")}
    assert fields == {
        "size": s.size, "quant": s.quant, "context": s.context, "published": s.published_text,
        "license": s.license, "architecture": s.architecture,
    }, e.repo_id
    assert row.locator('.origin [data-field="method"]').get_attribute("data-value") == e.method
    origin = row.locator(".origin").inner_text()
    assert all(p in origin for p in e.parents), (origin, e.parents)


def test_index_lists_every_model_and_filters_narrow_it(page: Any, seed_site: CatalogResult) -> None:
    watch = PageWatch(page)
    catalog = seed_site.catalog
    assert seed_site.index is not None
    page.goto(seed_site.index.as_uri())
    rows = page.locator("#models > li")
    # one row per model (its BF16 repo), its variants as chips: 5 models, not 10 repos
    merged = [e for e in catalog.models if not e.quantized]
    assert rows.count() == len(merged) == 5 and len(catalog.models) == 10
    for i, e in enumerate(merged):
        row = rows.nth(i)
        assert row.get_attribute("data-repo") == e.repo_id
        assert row.locator("a.name").inner_text() == e.repo_id
        chips = row.locator(".chips a.chip")
        assert chips.evaluate_all("els => els.map(e => [e.textContent, e.getAttribute('href')])") == [
            ["BF16", e.page], ["FP8", e.page.replace(".html", "-FP8.html")],
        ]
        _check_row(row, e)
        # parents link to their page here, or to the Hub
        assert row.locator(".origin a").count() == len(e.parents)
    screenshots(page, "catalog-index")

    page.select_option("#f-quant", "FP8")  # a row matches when one of its variants does
    assert _visible_repos(page) == [e.repo_id for e in merged]
    assert page.inner_text("#count") == "5 of 5 models"
    page.select_option("#f-method", "dare_ties")
    assert _visible_repos(page) == ["EmbeddedLLM/Mistral-7B-Merge-02-v0"]
    page.select_option("#f-quant", "")
    page.select_option("#f-method", "")
    page.fill("#q", "SAUL  fp8")  # every word must match (any case): repo ids, variants, parents, summaries, tags
    assert _visible_repos(page) == ["arcee-ai/saul-mistral-v0.2-7b-slerp"]
    page.fill("#q", "saul")
    assert _visible_repos(page) == ["arcee-ai/saul-mistral-v0.2-7b-slerp"]
    assert "q=saul" in page.evaluate("location.hash")
    page.reload()  # the filter state lives in the URL
    assert page.input_value("#q") == "saul" and len(_visible_repos(page)) == 1
    page.fill("#q", "no such model")
    assert _visible_repos(page) == [] and page.is_visible("#empty")
    page.fill("#q", "")
    page.select_option("#f-size", "7B")  # both variants of a model are filed under its size
    page.select_option("#f-license", "apache-2.0")
    assert len(_visible_repos(page)) == 5
    page.click('#models > li[data-repo="MatthieuJ/ING_2003M3_SLERP"] a.chip:text-is("FP8")')
    assert page.url.endswith("/models/MatthieuJ--ING_2003M3_SLERP-FP8.html")
    watch.check()


def test_model_page_shows_lineage_variants_and_versions(page: Any, seed_site: CatalogResult) -> None:
    watch = PageWatch(page)
    assert seed_site.out is not None
    e = seed_site.catalog.entry("MatthieuJ/ING_2003M3_SLERP-FP8")
    page.goto((seed_site.out / e.page).as_uri())
    assert page.inner_text("h1").startswith(e.repo_id)
    graph = page.locator("#lineage-graph")
    box = graph.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 300
    labels = graph.locator("g.node").evaluate_all("els => els.map(e => e.dataset.label)")
    assert sorted(labels) == sorted(n.label for n in e.lineage.nodes)
    assert {"MatthieuJ/ING_2003M3_SLERP", "MatthieuJ/ING_2003M2_SLERP", "mistralai/Mistral-7B-v0.1"} <= set(labels)
    assert graph.locator("path.edge").count() == len(e.lineage.edges)
    # every node box is drawn inside the picture, none on top of another
    rects = graph.locator("g.node rect").evaluate_all(
        "els => els.map(r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })")
    for i, a in enumerate(rects):
        assert box["x"] - 1 <= a[0] and a[2] <= box["x"] + box["width"] + 1
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # and its text fits in it (the layout estimates text widths without a browser)
    overflow = graph.locator("g.node").evaluate_all(
        """els => els.flatMap(g => { const w = g.querySelector('rect').width.baseVal.value;
             return Array.from(g.querySelectorAll('text')).filter(t => t.getComputedTextLength() > w - 6)
                         .map(t => t.textContent); })""")
    assert overflow == []
    assert page.locator("#versions tbody tr").count() == 1 and "1.0.0" in page.inner_text("#versions")
    card = page.inner_text("#card")
    assert "Merge details" in card and "Provenance" in card
    # facts and lineage once: the page's own, not the card's copies again
    assert "Key characteristics" not in card and "Lineage" not in page.locator("#card h3").all_inner_texts()
    assert "Model size" not in (page.locator("#card").text_content() or "")  # the card's strip is left out
    # the per-layer table is collapsed behind its band summary
    layers = page.locator('#card details:has(summary:text-matches("Per-layer values"))')
    assert layers.count() == 1 and not layers.first.evaluate("d => d.open")
    assert page.is_visible("#card li:has-text('self_attn: 0 → 0.452 (layers 0–7)')")
    page.locator("#card details summary").last.click()  # the card's own <details> still opens
    screenshots(page, "catalog-model")
    # the merged model's node in the graph and the variant list both lead to the bf16 page
    page.locator('#lineage-graph g.node[data-label="MatthieuJ/ING_2003M3_SLERP"] a').click()
    assert page.url.endswith("/models/MatthieuJ--ING_2003M3_SLERP.html")
    page.click('#variants a:has-text("FP8")')
    assert page.url.endswith("/models/MatthieuJ--ING_2003M3_SLERP-FP8.html")
    page.click("text=← All models")
    assert page.url.endswith("/index.html")
    watch.check()


def test_the_published_catalog_opens_clean(browser: Any, page: Any, published: Published, tmp_path: Path) -> None:
    # (browser first: without chromium this skips before the Hub is set up)
    result = build_catalog(tmp_path / "site", endpoint=published.url, retry=Retry(attempts=2, base_s=0.01))
    watch = PageWatch(page)
    assert result.index is not None and result.out is not None
    page.goto(result.index.as_uri())
    rows = page.locator("#models > li")
    merged = [e for e in result.catalog.models if not e.quantized]
    assert rows.count() == len(merged) == 2 and len(result.catalog.models) == 4
    for i, e in enumerate(merged):
        _check_row(rows.nth(i), e)
    screenshots(page, "catalog-hub-index")  # built from the local Hub: no loopback address anywhere
    e = result.catalog.entry("MatthieuJ/ING_2003M3_SLERP")
    page.goto((result.out / e.page).as_uri())
    assert page.locator("#versions tbody tr").count() == 2
    labels = page.locator("#lineage-graph g.node").evaluate_all("els => els.map(e => e.dataset.label)")
    assert "mistralai/Mistral-7B-Instruct-v0.2" in labels  # an ancestor read from a parent's card over HTTP
    screenshots(page, "catalog-hub-model")
    watch.check()
