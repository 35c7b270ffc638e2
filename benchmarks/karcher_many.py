"""karcher over many parents on the tiny stand-ins: our wall time and mergekit 0.1.5's.

    .venv/bin/python benchmarks/karcher_many.py [--models 17] [--mergekit]

Generates N tiny 32-layer stand-ins (base + N-1 fine-tunes), builds a karcher merge of all
of them with ``publisher build`` and, with ``--mergekit``, with ``mergekit-yaml`` from the
oracle side environment (tests/oracle/regenerate.py creates it), and prints both walls.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publisher.build import BuildOptions, build  # noqa: E402
from publisher.standins import TINY, Recipe, generate_model  # noqa: E402

MERGEKIT = ROOT / ".oracle-venv-mergekit" / "bin" / "mergekit-yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=17)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mergekit", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="karcher-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        paths = [
            generate_model(work / f"m{i}", TINY, recipe=Recipe(seed=2000 + i, base_seed=2000, perturbation=0.004) if i else Recipe(seed=2000))
            for i in range(args.models)
        ]
        print(f"generated {args.models} stand-ins in {time.monotonic() - t0:.1f}s")
        config = {"merge_method": "karcher", "models": [{"model": str(p)} for p in paths], "dtype": "bfloat16"}
        recipe = work / "karcher.yaml"
        recipe.write_text(yaml.safe_dump(config, sort_keys=False))
        t0 = time.monotonic()
        build(recipe, work / "ours", BuildOptions(threads=args.threads, quiet=True, render_cards=False))
        print(f"publisher: karcher of {args.models} models in {time.monotonic() - t0:.1f}s")
        if args.mergekit:
            t0 = time.monotonic()
            subprocess.run(
                [str(MERGEKIT), str(recipe), str(work / "mk"), "--no-cuda", "--quiet", "--no-copy-tokenizer", "--no-write-model-card"],
                check=True,
                env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
            )
            print(f"mergekit 0.1.5: karcher of {args.models} models in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    main()
