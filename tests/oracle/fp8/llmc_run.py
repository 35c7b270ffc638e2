"""Runs inside the oracle venv (llmcompressor 0.14.0.1): quantize fixture inputs with oneshot.

Usage: python llmc_run.py JOBS.json — a list of {"input", "output", "scheme", "ignore", "dtype"}.
One process for every job, so the heavy imports are paid once. Offline: nothing touches the Hub.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
from transformers import AutoModelForCausalLM


def main() -> None:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[job["dtype"]]
        model = AutoModelForCausalLM.from_pretrained(job["input"], dtype=dtype)
        recipe = QuantizationModifier(targets="Linear", scheme=job["scheme"], ignore=job["ignore"])
        oneshot(model=model, recipe=recipe)
        model.save_pretrained(job["output"], save_compressed=True)
        print(f"wrote {job['output']}", flush=True)


if __name__ == "__main__":
    main()
