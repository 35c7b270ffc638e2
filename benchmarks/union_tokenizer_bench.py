"""Union tokenizer merge of two 7B-shaped parents with different vocabularies: publisher vs mergekit.

    flock /tmp/bench.lock .venv/bin/python benchmarks/union_tokenizer_bench.py --parents /work/bench-data/slerp16

Takes two parents ``a`` and ``b`` (benchmarks/make_parents.py; 32000-word stand-in
tokenizers) and makes ``b-vocab``: ``b``'s weights (hard links, no extra disk) with another
vocabulary of the same size, whose last 2000 words are new (``z0 … z1999``). The recipe is a
linear merge with ``tokenizer_source: union`` (34000 output rows). Each tool runs under
/usr/bin/time -v from the same page-cache state; the script prints wall time and peak RSS and
deletes the outputs and ``b-vocab``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchlib import drop_caches, timed  # noqa: E402

from publisher.standins_vocab import write_word_tokenizer  # noqa: E402

RECIPE = """\
merge_method: linear
base_model: {a}
models:
  - model: {a}
    parameters: {{weight: 0.5}}
  - model: {b}
    parameters: {{weight: 0.5}}
tokenizer_source: union
dtype: bfloat16
"""


def make_vocab_variant(b: Path, out: Path, new_words: int = 2000) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for f in b.iterdir():
        if f.suffix == ".safetensors" or f.name in ("config.json", "generation_config.json", "model.safetensors.index.json"):
            os.link(f, out / f.name)
    vocab = int(json.loads((b / "config.json").read_text())["vocab_size"])
    kept = vocab - 3 - new_words
    write_word_tokenizer(out, [f"w{i}" for i in range(3, 3 + kept)] + [f"z{i}" for i in range(new_words)], [])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parents", type=Path, default=Path("/work/bench-data/slerp16"))
    ap.add_argument("--mergekit", type=Path, default=ROOT / ".oracle-venv-mergekit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-words", type=int, default=2000)
    args = ap.parse_args()
    a, b = args.parents / "a", args.parents / "b"
    with tempfile.TemporaryDirectory(prefix="union-bench-", dir=args.parents) as tmp:
        work = Path(tmp)
        bv = make_vocab_variant(b, work / "b-vocab", args.new_words)
        recipe = work / "union.yaml"
        recipe.write_text(RECIPE.format(a=a, b=bv))
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TRANSFORMERS_OFFLINE="1")
        runs = {
            "publisher build": [str(ROOT / ".venv/bin/publisher"), "build", str(recipe), "--out", str(work / "ours"),
                                "--quiet", "--no-card", "--threads", str(args.threads)],
            "mergekit 0.1.5": [str(args.mergekit / "bin/mergekit-yaml"), str(recipe), str(work / "mk"), "--no-cuda",
                               "--quiet", "--no-write-model-card"],
        }
        for label, cmd in runs.items():
            state = drop_caches(args.parents)
            wall, rss, cpu = timed(cmd, env)
            print(f"{label}: wall {wall:.0f} s, peak RSS {rss:.2f} GiB, CPU {cpu:.0f} s ({state})", flush=True)
            shutil.rmtree(work / ("ours" if label.startswith("publisher") else "mk"), ignore_errors=True)


if __name__ == "__main__":
    main()
