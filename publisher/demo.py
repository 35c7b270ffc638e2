"""The offline demo: a local Hub, stand-in parents, a release of every recipe, the catalog.

Nothing here needs a network. The local Hub-compatible server runs in-process; every parent
a recipe names that is not itself a recipe gets a stand-in: a tiny 32-layer Mistral model
with random weights, generated deterministically and published under that repo id with a
card that says plainly it is a stand-in. Then ``publisher release`` runs over ``recipes/``
against that server exactly as CI runs it against the Hub, and the catalog is built from the
published repos. A second run publishes nothing new.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from publisher.build import BuildOptions
from publisher.determinism import tensor_seed
from publisher.hub.server.rootdir import make_root
from publisher.release import ReleaseOptions, Row, load_catalog, run_release
from publisher.resources import resource_dir
from publisher.sources import HUB_REF_RE
from publisher.standins import FAMILY_BASE_SEED, TINY, Recipe, generate_model

RECIPES = resource_dir("recipes")
EXAMPLE = RECIPES / "examples" / "tiny-slerp.yaml"
DEMO_USER = "demo"
# Stand-ins of well-known fine-tunes are perturbations of one base, as the real ones are of
# Mistral-7B-v0.1, so task-vector methods (DARE-TIES) see real task vectors.
FAMILY_BASE = "mistralai/Mistral-7B-v0.1"
KNOWN_FINETUNES_OF_BASE = {
    "teknium/OpenHermes-2.5-Mistral-7B",
    "Intel/neural-chat-7b-v3-3",
    "mistralai/Mistral-7B-Instruct-v0.1",
}
# One stand-in declares a merge lineage, so the demo shows a grandparent tree (illustrative).
STANDIN_LINEAGE = {
    "MatthieuJ/ING_2003M2_SLERP": ["mistralai/Mistral-7B-Instruct-v0.2", "chihoonlee10/T3Q-DPO-Mistral-7B"],
}


def standin_card(repo_id: str) -> str:
    lines = ["---", "license: apache-2.0", "library_name: transformers", "pipeline_tag: text-generation"]
    parents = STANDIN_LINEAGE.get(repo_id)
    tags = ["stand-in"]
    if parents:
        lines += ["base_model:", *[f"- {p}" for p in parents], "base_model_relation: merge"]
        tags += ["merge", "slerp"]
    elif repo_id in KNOWN_FINETUNES_OF_BASE:
        lines += [f"base_model: {FAMILY_BASE}", "base_model_relation: finetune"]
    lines += ["tags:", *[f"- {t}" for t in tags], "---", ""]
    body = (
        f"# {repo_id} (stand-in)\n\nThis repository is a **stand-in** published by `publisher demo` on a local "
        "Hub: a tiny Mistral-architecture model (32 layers, hidden size 16) with random weights under the "
        "repo id a recipe names. It is not the real model and knows nothing.\n"
    )
    if parents:
        body += "\nIts declared lineage (a SLERP of the two models above) is illustrative, for the demo.\n"
    return "\n".join(lines) + body


def standin_recipe(repo_id: str) -> Recipe:
    if repo_id == FAMILY_BASE:
        return Recipe(seed=FAMILY_BASE_SEED)
    seed = tensor_seed(0, repo_id) % 2**31
    if repo_id in KNOWN_FINETUNES_OF_BASE:
        return Recipe(seed=seed, base_seed=FAMILY_BASE_SEED, perturbation=0.004)
    return Recipe(seed=seed)


def external_parents(recipes_dir: Path) -> list[str]:
    """Repo ids that recipes merge but no recipe publishes."""
    from publisher.recipe import model_references

    nodes = load_catalog(recipes_dir)
    refs: set[str] = set()
    for node in nodes.values():
        for ref in model_references(node.loaded.merge):
            m = HUB_REF_RE.match(ref)
            if m and m.group("repo") not in nodes:
                refs.add(m.group("repo"))
    return sorted(refs)


def generate_standin(repo_id: str, root: Path) -> Path:
    """The stand-in model folder (weights, config, tokenizer, card) for one repo id."""
    folder = root / repo_id.replace("/", "--")
    if not (folder / "config.json").is_file():
        generate_model(folder, TINY, recipe=standin_recipe(repo_id), card=standin_card(repo_id), tokenizer_kind="chars")
    return folder


def seed_standins(endpoint: str, token: str, repo_ids: list[str], work: Path) -> list[str]:
    """Publish a stand-in for each repo id that the server does not have yet; returns those made."""
    from huggingface_hub import CommitOperationAdd

    from publisher.hub.remote import client_settings, make_api

    api = make_api(endpoint, token)
    made = []
    with client_settings(endpoint):
        for repo_id in repo_ids:
            if api.repo_exists(repo_id) and api.file_exists(repo_id, "config.json"):
                continue
            folder = generate_standin(repo_id, work)
            api.create_repo(repo_id, exist_ok=True)
            ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=p) for p in sorted(folder.iterdir()) if p.is_file()]
            api.create_commit(repo_id, ops, commit_message="Stand-in for the publisher demo")
            made.append(repo_id)
    return made


@dataclass
class DemoResult:
    hub_url: str
    standins: list[str]
    new_standins: list[str]
    rows: list[Row]
    site: Path | None
    seconds: float


def run_demo(
    out: Path,
    *,
    recipes_dir: Path = RECIPES,
    quiet: bool = True,
    serve: bool = False,
    on_ready: Callable[[DemoResult], None] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> DemoResult:
    import time

    from publisher.hub.server import LocalHub

    t0 = time.monotonic()
    out = make_root(out.absolute())  # scratch holding a Hub's secret: git ignores all of it
    parents = external_parents(recipes_dir)
    namespaces = tuple(sorted({r.split("/")[0] for r in parents} | {n.split("/")[0] for n in load_catalog(recipes_dir)}))
    with _demo_cache(out / "hf-cache"), LocalHub(out / "hub") as hub:
        token = hub.create_token(DEMO_USER, "write", orgs=namespaces)
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            new = seed_standins(hub.url, token, parents, Path(tmp))
        log(f"local Hub at {hub.url}: {len(parents)} stand-in parents ({len(new)} new)")
        options = ReleaseOptions(
            builds_dir=out / "builds",
            endpoint=hub.url,
            token=token,
            build=BuildOptions(quiet=quiet, warn=log),
        )
        rows = run_release(recipes_dir, options=options, log=log)
        site = _catalog(hub.url, token, out / "site")
        result = DemoResult(hub.url, parents, new, rows, site, time.monotonic() - t0)
        if on_ready is not None:
            on_ready(result)
        if serve:
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return result


@contextmanager
def _demo_cache(folder: Path) -> Iterator[None]:
    """Every huggingface_hub download of the demo (parents, parents' cards) goes to ``folder``.

    The stand-ins carry real repo ids (mistralai/Mistral-7B-v0.1...): cached in the user's own
    Hugging Face cache, their refs would shadow the real models' for offline use.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_CACHE, os.environ.get("PUBLISHER_HF_CACHE")
    constants.HF_HUB_CACHE = str(folder)
    os.environ["PUBLISHER_HF_CACHE"] = str(folder)
    try:
        yield
    finally:
        constants.HF_HUB_CACHE = saved[0]
        if saved[1] is None:
            os.environ.pop("PUBLISHER_HF_CACHE", None)
        else:
            os.environ["PUBLISHER_HF_CACHE"] = saved[1]


def _catalog(endpoint: str, token: str, site: Path) -> Path | None:
    try:
        from publisher.catalog import build_catalog  # type: ignore[import-not-found, unused-ignore]
    except ModuleNotFoundError:
        return None
    build_catalog(endpoint=endpoint, token=token, out=site)
    return site / "index.html"
