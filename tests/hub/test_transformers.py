"""transformers loads what the publisher published, through HF_ENDPOINT (read at import: a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from publisher.hub.publish import publish
from tests.hub.helpers import Hub, make_build

ROOT_DIR = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
repo, local = sys.argv[1], sys.argv[2]
remote = AutoModelForCausalLM.from_pretrained(repo, revision="v1.0.0")
ref = AutoModelForCausalLM.from_pretrained(local)
a, b = remote.state_dict(), ref.state_dict()
assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "weights differ"
tok = AutoTokenizer.from_pretrained(repo, revision="v1.0.0")
ids = tok("w5 w6 w7", return_tensors="pt").input_ids
out = remote.generate(ids, max_new_tokens=3, do_sample=False)
print("OK", remote.config.model_type, tuple(out.shape))
"""


def test_from_pretrained_through_hf_endpoint(hub: Hub, tmp_path: Path) -> None:
    build = make_build(tmp_path / "build", variants=False)
    publish(build, endpoint=hub.url, token=hub.token)
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR), HF_ENDPOINT=hub.url, HF_TOKEN=hub.token,
               HF_HOME=str(tmp_path / "hf-home"), TRANSFORMERS_VERBOSITY="error")
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_HUB_DISABLE_XET", None)  # the default client, hf_xet and all
    out = subprocess.run([sys.executable, "-c", SCRIPT, "alice/tiny-merge", str(build)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK mistral (1, 6)" in out.stdout
