"""llm-compressor side of quantize_bench.py; runs inside the oracle venv (llmcompressor 0.14.0.1).

    python llmc_fp8.py oneshot|model_free SRC OUT [--scheme FP8_DYNAMIC]

``oneshot``: load with transformers, oneshot(QuantizationModifier), save_pretrained(save_compressed).
``model_free``: llm-compressor's streaming per-shard path, ``model_free_ptq`` on CPU.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["oneshot", "model_free"])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--scheme", default="FP8_DYNAMIC")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.mode == "oneshot":
        import torch
        from llmcompressor import oneshot
        from llmcompressor.modifiers.quantization import QuantizationModifier
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.src, dtype=torch.bfloat16)
        t1 = time.perf_counter()
        oneshot(model=model, recipe=QuantizationModifier(targets="Linear", scheme=args.scheme, ignore=["lm_head"]))
        t2 = time.perf_counter()
        model.save_pretrained(args.out, save_compressed=True)
        t3 = time.perf_counter()
        print(f"phases: load+imports {t1 - t0:.1f}s oneshot {t2 - t1:.1f}s save {t3 - t2:.1f}s", flush=True)
    else:
        from llmcompressor import model_free_ptq

        t1 = time.perf_counter()
        # Without a model definition it cannot tell an Embedding from a Linear: with only
        # ignore=["lm_head"] it quantizes embed_tokens too, so it is ignored explicitly.
        ignore = ["lm_head", "re:.*embed_tokens$"]
        model_free_ptq(args.src, args.out, scheme=args.scheme, ignore=ignore, max_workers=1, device="cpu")
        print(f"phases: imports {t1 - t0:.1f}s model_free_ptq {time.perf_counter() - t1:.1f}s", flush=True)


if __name__ == "__main__":
    main()
