"""Generate synthetic Mistral checkpoints for benchmarks, streaming (never the whole model in memory).

    python3 benchmarks/make_parents.py OUT --preset 7b --layers 8          # one 2B-param model at OUT
    python3 benchmarks/make_parents.py OUT --preset 7b --family 2          # OUT/base, OUT/ft1, OUT/ft2
    python3 benchmarks/make_parents.py OUT --hidden 1024 --intermediate 3584 --layers 4 --vocab 8000

Models come from ``publisher.standins`` (deterministic: same arguments, same bytes). A model
folder is built under a temporary name and renamed when complete; an existing folder made
with the same arguments is reused (``--force`` rebuilds). A 32-layer 7B-shaped model is
14.5 GB on disk: the free space is checked first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publisher.commands.common import parse_size
from publisher.standins import (
    FAMILY_BASE_SEED,
    SEVEN_B,
    TINY,
    MistralShape,
    Recipe,
    generate_model,
    tensor_plan,
)

PRESETS = {"7b": SEVEN_B, "tiny": TINY}
MARKER = ".make_parents.json"


def model_bytes(shape: MistralShape, dtype: str) -> int:
    return sum(t.nbytes for t in tensor_plan(shape, dtype))


def make_model(out: Path, shape: MistralShape, recipe: Recipe, dtype: str, max_shard: int, force: bool) -> bool:
    """Build one model folder; returns False when an identical one already exists."""
    spec = {"shape": asdict(shape), "recipe": asdict(recipe), "dtype": dtype, "max_shard_bytes": max_shard}
    marker = out / MARKER
    if out.exists() and not force and marker.is_file() and json.loads(marker.read_text()) == spec:
        return False
    if out.exists():
        shutil.rmtree(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    generate_model(tmp, shape, recipe=recipe, dtype=dtype, max_shard_bytes=max_shard)
    (tmp / MARKER).write_text(json.dumps(spec, indent=2) + "\n")
    tmp.rename(out)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="7b")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--dtype", default="BF16", choices=["BF16", "F16", "F32"])
    ap.add_argument("--max-shard-size", default="5GB")
    ap.add_argument("--seed", type=int, default=FAMILY_BASE_SEED, help="model seed (the base's, with --family)")
    ap.add_argument("--family", type=int, metavar="N", help="write OUT/base plus N fine-tunes OUT/ft1..ftN")
    ap.add_argument("--perturbation", type=float, default=0.004, help="fine-tune offset std (with --family)")
    ap.add_argument("--force", action="store_true", help="rebuild even if an identical model exists")
    args = ap.parse_args(argv)

    shape = PRESETS[args.preset]
    overrides = {
        "layers": args.layers, "hidden": args.hidden, "intermediate": args.intermediate,
        "heads": args.heads, "kv_heads": args.kv_heads, "vocab": args.vocab,
    }
    shape = replace(shape, **{k: v for k, v in overrides.items() if v is not None})
    if shape.hidden % shape.heads or shape.heads % shape.kv_heads:
        ap.error("hidden must be divisible by heads, and heads by kv-heads")
    max_shard = parse_size(args.max_shard_size)

    if args.family is None:
        models = {args.out: Recipe(seed=args.seed)}
    else:
        models = {args.out / "base": Recipe(seed=args.seed)}
        for k in range(1, args.family + 1):
            models[args.out / f"ft{k}"] = Recipe(seed=args.seed + k, base_seed=args.seed, perturbation=args.perturbation)

    size = model_bytes(shape, args.dtype)
    todo = [p for p in models if not (p / MARKER).is_file()] if not args.force else list(models)
    anchor = args.out
    while not anchor.exists():
        anchor = anchor.parent
    free = shutil.disk_usage(anchor).free
    if len(todo) * size > free - (1 << 30):
        print(f"error: need {len(todo) * size / 1e9:.1f} GB, only {free / 1e9:.1f} GB free", file=sys.stderr)
        return 2
    params = size // {"BF16": 2, "F16": 2, "F32": 4}[args.dtype]
    for path, recipe in models.items():
        t0 = time.perf_counter()
        made = make_model(path, shape, recipe, args.dtype, max_shard, args.force)
        state = f"written in {time.perf_counter() - t0:.1f} s" if made else "already there"
        print(f"{path}: {params / 1e9:.2f} B params, {size / 1e9:.2f} GB, {state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
