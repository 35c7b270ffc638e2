"""Plan a synthetic catalog of hundreds of recipes: planning time, dependency waves, matrix size.

Recipes are written to a temporary git repository. Each merges 2–3 models; each model is,
with probability ``--p-recipe``, an earlier recipe of the catalog (a merge of merges: the
recipes form a random DAG), otherwise one of ``--externals`` Hub models. Then, as the
release workflow's plan job does:

- full release: load every recipe, build the graph, the waves and the Actions matrix;
- incremental: ``--changed`` recipes get a new merge and version (and their dependents a
  bump, as the release requires), committed; then the same plan with ``--changed-since``.

    python3 benchmarks/release_scale.py --recipes 500 --p-recipe 0.3
    python3 benchmarks/release_scale.py --recipes 500 --p-recipe 0.6 --recent 50
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publisher.errors import RecipeError
from publisher.release import MAX_MATRIX_JOBS, decide, dependents, load_catalog, matrix, waves


def recipe(name: str, version: str, parents: list[str], weight: float) -> str:
    models = "".join(
        f"    - model: {p}\n      parameters:\n        weight: {weight if i == 0 else round(1 - weight, 3)}\n"
        for i, p in enumerate(parents)
    )
    return (
        f"name: {name}\nversion: {version}\nmerge:\n  models:\n{models}  merge_method: linear\n  dtype: bfloat16\n"
        "quantize:\n  - scheme: fp8-dynamic\ncard:\n  license: apache-2.0\n"
    )


def make_catalog(root: Path, n: int, p_recipe: float, externals: int, recent: int, rng: random.Random) -> dict[str, list[str]]:
    """Write n recipes; ``recent`` > 0 picks recipe parents among the last ``recent`` ones (deeper chains)."""
    names: list[str] = []
    graph: dict[str, list[str]] = {}
    for i in range(n):
        name = f"org{i % 7}/merge-{i:04d}"
        parents: list[str] = []
        for _ in range(rng.choice((2, 2, 3))):
            pool = names[-recent:] if recent else names
            if pool and rng.random() < p_recipe:
                cand = rng.choice(pool)
            else:
                cand = f"ext{rng.randrange(5)}/base-{rng.randrange(externals):03d}"
            if cand not in parents:
                parents.append(cand)
        if len(parents) < 2:
            parents.append(f"ext0/base-{externals + i:03d}")
        (root / "recipes" / f"merge-{i:04d}.yaml").write_text(recipe(name, "1.0.0", parents, 0.5))
        names.append(name)
        graph[name] = parents
    return graph


def plan(recipes: Path, since: str | None, max_waves: int | None) -> tuple[dict[str, float], dict[str, object], list[list[str]]]:
    t0 = time.perf_counter()
    nodes = load_catalog(recipes)
    t1 = time.perf_counter()
    order = waves(nodes)
    t2 = time.perf_counter()
    decisions = decide(nodes, recipes, since)
    t3 = time.perf_counter()
    m = matrix(nodes, decisions, recipes.parent)
    t4 = time.perf_counter()
    limit = None
    if max_waves is not None:
        try:
            matrix(nodes, decisions, recipes.parent, max_waves=max_waves)
        except RecipeError as e:
            limit = e.line()
    times = {"load": t1 - t0, "graph+waves": t2 - t1, "changes": t3 - t2, "matrix": t4 - t3, "total": t4 - t0}
    return times, {"matrix": m, "limit": limit, "bytes": len(json.dumps(m))}, order


def report(title: str, times: dict[str, float], info: dict[str, object], order: list[list[str]]) -> None:
    m = info["matrix"]
    assert isinstance(m, dict)
    widths = [len(m[f"wave{i}"]["include"]) for i in range(m["waves"])]
    print(f"\n{title}")
    print("  planning: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in times.items()))
    print(f"  graph: {len(order)} waves, widths {[len(w) for w in order]}")
    print(f"  matrix: {m['waves']} waves, {m['jobs']} jobs, widths {widths}, JSON {info['bytes'] / 1024:.0f} KiB")
    if info["limit"]:
        print(f"  with --max-waves 10: {info['limit']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", type=int, default=500)
    ap.add_argument("--p-recipe", type=float, default=0.3, help="chance that a parent is an earlier recipe")
    ap.add_argument("--recent", type=int, default=0, help="pick recipe parents among the last N recipes only")
    ap.add_argument("--externals", type=int, default=60, help="distinct Hub models the catalog starts from")
    ap.add_argument("--changed", type=int, default=10, help="recipes changed for the incremental plan")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import git

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "recipes").mkdir()
        t0 = time.perf_counter()
        make_catalog(root, args.recipes, args.p_recipe, args.externals, args.recent, rng)
        repo = git.Repo.init(root)
        with repo.config_writer() as cw:
            cw.set_value("user", "name", "bench")
            cw.set_value("user", "email", "bench@example.com")
        repo.git.add(A=True)
        repo.index.commit("catalog")
        base = repo.head.commit.hexsha
        print(f"{args.recipes} recipes, p(recipe parent) {args.p_recipe}, recent {args.recent or 'all'}, "
              f"{args.externals} external models, seed {args.seed} (written and committed in {time.perf_counter() - t0:.1f} s)")

        times, info, order = plan(root / "recipes", None, 10)
        report("full release (every recipe)", times, info, order)

        nodes = load_catalog(root / "recipes")
        changed = rng.sample(sorted(nodes), args.changed)
        bumped: set[str] = set()
        for name in changed:
            bumped |= dependents(nodes, name)
        for name in sorted(set(changed) | bumped):
            node = nodes[name]
            parents = [m.model for m in node.loaded.merge.models or []]
            weight = 0.4 if name in changed else 0.5
            node.path.write_text(recipe(name, "1.1.0", parents, weight))
        repo.git.add(A=True)
        repo.index.commit("changes")
        times, info, order = plan(root / "recipes", base, 10)
        report(f"incremental: {len(changed)} merges changed, {len(bumped - set(changed))} dependents bumped "
               f"(--changed-since)", times, info, order)
        print(f"\nmatrix limit per wave: {MAX_MATRIX_JOBS} jobs (wider waves are packed)")


if __name__ == "__main__":
    main()
