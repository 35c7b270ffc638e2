"""The catalog of a Hub endpoint: real builds published to the LocalHub, read back with huggingface_hub."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from catalogkit import Published, standins
from huggingface_hub import HfApi, ModelCard

from publisher.build import BuildOptions, build
from publisher.card import build_strips
from publisher.catalog import build_catalog, collect_catalog
from publisher.catalog.schema import Catalog
from publisher.demo import EXAMPLE
from publisher.errors import CatalogError
from publisher.hub.publish import publish
from publisher.hub.remote import Retry, client_settings, loopback_online
from publisher.hub.server import LocalHub
from publisher.hub.server.faults import FaultRule
from publisher.manifest import load_manifest

FAST = Retry(attempts=2, base_s=0.01, max_s=0.02)


def _published_ids(published: Published) -> list[str]:
    ids = []
    for b in published.builds.values():
        ids += [v.repo_id for v in load_manifest(b).variants if v.repo_id]
    return sorted(ids, key=str.casefold)


def test_catalog_of_the_published_repos(published: Published, tmp_path: Path) -> None:
    result = build_catalog(tmp_path / "site", endpoint=published.url, retry=FAST, hub_url=PUBLIC)
    catalog = result.catalog
    assert (catalog.source, catalog.location, catalog.hub_url) == ("hub", PUBLIC, PUBLIC)
    assert [e.repo_id for e in catalog.models] == _published_ids(published)
    # the parents' repos hold only a card and no version tag: not catalog models, quietly left out
    assert catalog.skipped == sorted((f"{p}: no version tag (v*)" for p in published.parents), key=str.casefold)
    assert result.warnings == []
    api = HfApi(endpoint=published.url)
    with loopback_online(published.url):
        for repo, build_dir in published.builds.items():
            for v in load_manifest(build_dir).variants:
                assert v.repo_id is not None
                entry = catalog.entry(v.repo_id)
                refs = api.list_repo_refs(v.repo_id)
                dates = {c.commit_id: c.created_at for c in api.list_repo_commits(v.repo_id)}
                tags = sorted(((t.name, t.target_commit) for t in refs.tags), reverse=True)
                assert [(x.tag, x.commit) for x in entry.versions] == tags
                assert all(x.date == dates[x.commit] for x in entry.versions)
                assert entry.revision == next(b.target_commit for b in refs.branches if b.name == "main")
                # the strip is the card stage's strip of the build, published on the tag's date
                latest = entry.versions[0]
                assert entry.strip == build_strips(build_dir, published=latest.date.date())[v.name]
                assert entry.card == ModelCard((build_dir / v.folder / "README.md").read_text()).text
                assert entry.family == repo and entry.source == f"{PUBLIC}/{v.repo_id}"
    ing = catalog.entry("MatthieuJ/ING_2003M3_SLERP")
    assert [x.version for x in ing.versions] == ["1.1.0", "1.0.0"] and ing.strip.version == "1.1.0"
    assert (ing.strip.context, ing.facts.context_served, ing.facts.context_config) == ("4k", 4096, 32768)
    fp8 = catalog.entry("EmbeddedLLM/Mistral-7B-Merge-02-v0-FP8")
    assert (fp8.variant, fp8.method, fp8.relation, fp8.parents) == ("FP8", "dare_ties", "quantized", ["EmbeddedLLM/Mistral-7B-Merge-02-v0"])
    assert [v.repo_id for v in fp8.variants] == ["EmbeddedLLM/Mistral-7B-Merge-02-v0", "EmbeddedLLM/Mistral-7B-Merge-02-v0-FP8"]
    # a quantized copy has its model's parameter count (scales are not parameters): one size bucket
    merged = catalog.entry("EmbeddedLLM/Mistral-7B-Merge-02-v0")
    manifest = load_manifest(published.builds["EmbeddedLLM/Mistral-7B-Merge-02-v0"]).variant("merged")
    assert fp8.facts.parameter_count == merged.facts.parameter_count == manifest.parameter_count
    assert fp8.strip.size == merged.strip.size


def test_lineage_is_read_card_by_card_over_http(published: Published) -> None:
    catalog = collect_catalog(endpoint=published.url, retry=FAST).catalog
    entry = catalog.entry("MatthieuJ/ING_2003M3_SLERP-FP8")
    labels = {n.id: n.label for n in entry.lineage.nodes}
    edges = {(labels[a], labels[b]) for a, b in entry.lineage.edges}
    assert {
        ("MatthieuJ/ING_2003M3_SLERP", "MatthieuJ/ING_2003M3_SLERP-FP8"),
        ("chihoonlee10/T3Q-DPO-Mistral-7B", "MatthieuJ/ING_2003M3_SLERP"),
        ("MatthieuJ/ING_2003M2_SLERP", "MatthieuJ/ING_2003M3_SLERP"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "MatthieuJ/ING_2003M2_SLERP"),  # from M2's card on the Hub
        ("mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.2"),
    } <= edges
    nodes = {n.label: n for n in entry.lineage.nodes}
    assert nodes["MatthieuJ/ING_2003M2_SLERP"].method == "slerp" and nodes["MatthieuJ/ING_2003M2_SLERP"].license == "apache-2.0"
    assert nodes["MatthieuJ/ING_2003M3_SLERP"].page == "models/MatthieuJ--ING_2003M3_SLERP.html"
    assert entry.lineage.gaps == []


def test_builds_and_their_published_repos_give_the_same_entries(published: Published) -> None:
    from_hub = collect_catalog(endpoint=published.url, retry=FAST).catalog
    builds_root = next(iter(published.builds.values())).parent
    from_builds = collect_catalog(builds=builds_root).catalog
    assert [e.repo_id for e in from_builds.models] == [e.repo_id for e in from_hub.models]
    same = ("variant", "quantized", "relation", "method", "parents", "family", "variants", "license", "tags", "card", "facts", "summary")
    for a, b in zip(from_builds.models, from_hub.models, strict=True):
        assert {k: getattr(a, k) for k in same} == {k: getattr(b, k) for k in same}, a.repo_id
        assert a.strip.model_copy(update={"published": None}) == b.strip.model_copy(update={"published": None})
        assert [v.version for v in a.versions] == [v.version for v in b.versions]


def test_no_weights_are_downloaded_only_headers_by_range(published: Published, monkeypatch: pytest.MonkeyPatch) -> None:
    app = published.hub.app
    served: list[tuple[str, str | None, int, int]] = []  # path, Range, status, bytes sent
    dispatch = app.dispatch

    def spy(req: Any) -> Any:
        resp = dispatch(req)
        if req.path.endswith(".safetensors"):
            sent = resp.file.length if resp.file is not None else len(resp.body)
            served.append((req.path, req.headers.get("Range"), resp.status, sent))
        return resp

    monkeypatch.setattr(app, "dispatch", spy)
    collect_catalog(endpoint=published.url, retry=FAST)
    shards = {p: p.stat().st_size for b in published.builds.values() for p in b.rglob("*.safetensors")}
    assert len(served) == len(_published_ids(published))  # one request per shard (each repo: one shard)
    assert all(method_range and status == 206 for _p, method_range, status, _n in served)
    sent = sum(n for *_x, n in served)
    header_bytes = sum(8 + int.from_bytes(p.read_bytes()[:8], "little") for p in shards)
    assert sent <= 64 * 1024 * len(served) and sent < sum(shards.values()) / 2
    assert sent >= header_bytes / 2  # the headers did come (same builds' headers, some versions repeat)


def test_author_filter_and_untagged_repos(published: Published) -> None:
    only = collect_catalog(endpoint=published.url, authors=["EmbeddedLLM"], retry=FAST).catalog
    assert [e.repo_id for e in only.models] == ["EmbeddedLLM/Mistral-7B-Merge-02-v0", "EmbeddedLLM/Mistral-7B-Merge-02-v0-FP8"]
    warned: list[str] = []
    everything = collect_catalog(endpoint=published.url, include_untagged=True, retry=FAST, warn=warned.append)
    # a parent's repo holds a card but no weights: listed repos must be describable, so it is skipped loudly
    assert len(everything.catalog.models) == len(_published_ids(published))
    assert sorted(warned) == sorted(f"skipped {p}: no config.json" for p in published.parents)


@pytest.fixture
def small_hub(tmp_path: Path) -> Iterator[tuple[LocalHub, str, Path]]:
    """One tiny example model published on its own LocalHub."""
    with LocalHub(tmp_path / "hub") as hub:
        token = hub.create_token("demo", "write", orgs=("publisher-demo",))
        recipe = tmp_path / "tiny.yaml"
        recipe.write_text(EXAMPLE.read_text())
        parents = standins(recipe, tmp_path / "parents")
        out = build(recipe, tmp_path / "build", BuildOptions(quiet=True), recipe_outputs=parents).out
        publish(out, endpoint=hub.url, token=token)
        yield hub, token, out


def test_a_malformed_card_on_the_hub_is_skipped_or_fails_under_strict(
    small_hub: tuple[LocalHub, str, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    hub, token, _out = small_hub
    api = HfApi(endpoint=hub.url, token=token)
    good = collect_catalog(endpoint=hub.url, retry=FAST).catalog
    assert [e.repo_id for e in good.models] == ["publisher-demo/tiny-slerp", "publisher-demo/tiny-slerp-FP8"]
    # a card that reached a repo without the Hub's check (an old repo, another server): the
    # validator is told to let it through once
    hub.faults.add(FaultRule(action="status", path="/api/validate-yaml", status=200))
    with client_settings(hub.url):
        api.upload_file(path_or_fileobj=b"---\nlicense: [apache-2.0\n---\n# broken\n", path_in_repo="README.md",
                        repo_id="publisher-demo/tiny-slerp")
    r = cli("catalog", "--endpoint", hub.url, "--out", tmp_path / "site")
    assert r.code == 0 and "1 models →" in r.out
    assert "warning: skipped publisher-demo/tiny-slerp: malformed card: the front matter is not valid YAML" in r.err
    site = Catalog.model_validate_json((tmp_path / "site" / "catalog.json").read_text())
    assert [e.repo_id for e in site.models] == ["publisher-demo/tiny-slerp-FP8"]
    assert site.models[0].variants[0].repo_id == "publisher-demo/tiny-slerp-FP8"  # its bf16 is not listed
    with pytest.raises(CatalogError, match=r"strict: publisher-demo/tiny-slerp: malformed card.*README.md line 2"):
        collect_catalog(endpoint=hub.url, strict=True, retry=FAST)


def test_empty_unreachable_and_offline_endpoints_are_one_line_and_exit_2(
    tmp_path: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalHub(tmp_path / "empty-hub") as hub:
        r = cli("catalog", "--endpoint", hub.url, "--out", tmp_path / "site")
    assert r.code == 2 and "no models to list" in r.err and len(r.err.strip().splitlines()) == 1
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("catalog", "--endpoint", f"http://127.0.0.1:{port}", "--out", tmp_path / "site")
    assert r.code == 2 and f"cannot reach http://127.0.0.1:{port} (" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    r = cli("catalog", "--endpoint", "https://hub.example.org", "--out", tmp_path / "site")
    assert r.code == 2 and "HF_HUB_OFFLINE is set" in r.err
    assert not (tmp_path / "site").exists()


def test_catalog_json_round_trips(published: Published, tmp_path: Path) -> None:
    result = build_catalog(tmp_path / "site", endpoint=published.url, retry=FAST)
    assert Catalog.model_validate_json((tmp_path / "site" / "catalog.json").read_text()) == result.catalog


PUBLIC = "https://hub.example.org"


def _site_text(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*") if p.is_file()}


def test_a_site_from_the_local_hub_never_prints_its_loopback_address(
    published: Published, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    host = published.url.split("://", 1)[1]
    # by default: the endpoint is loopback, so no page names a Hub or links a repo there
    r = cli("catalog", "--endpoint", published.url, "--out", tmp_path / "plain")
    assert r.code == 0, r.err
    assert "--hub-url" in r.out
    pages = _site_text(tmp_path / "plain")
    assert [rel for rel, text in pages.items() if host in text or "127.0.0.1" in text or "localhost" in text] == []
    assert "a local Hub" in pages["index.html"]
    # --hub-url: header, footer, every Source row and the parents link to the public Hub
    r = cli("catalog", "--endpoint", published.url, "--hub-url", PUBLIC + "/", "--out", tmp_path / "public")
    assert r.code == 0, r.err
    pages = _site_text(tmp_path / "public")
    assert [rel for rel, text in pages.items() if host in text or "127.0.0.1" in text] == []
    index = pages["index.html"]
    assert f'Hub: <a href="{PUBLIC}">{PUBLIC}</a>' in index and f"from {PUBLIC}." in index
    model = pages["models/MatthieuJ--ING_2003M3_SLERP.html"]
    assert f'<a href="{PUBLIC}/MatthieuJ/ING_2003M3_SLERP" rel="external">' in model
    assert f'href="{PUBLIC}/chihoonlee10/T3Q-DPO-Mistral-7B" rel="external"' in index  # a parent on the Hub


@pytest.mark.parametrize(
    ("url", "words"),
    [("http://127.0.0.1:8080", "is a loopback address"), ("hub.example.org", "is not an http(s) URL")],
)
def test_a_bad_hub_url_is_refused(published: Published, tmp_path: Path, cli: Callable[..., Any], url: str, words: str) -> None:
    r = cli("catalog", "--endpoint", published.url, "--hub-url", url, "--out", tmp_path / "site")
    assert r.code == 2 and words in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "site").exists()
