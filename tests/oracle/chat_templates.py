"""Regenerate tests/fixtures/chat_templates.json: mergekit 0.1.5's named chat templates,
rendered by transformers for a few conversations (the oracle for publisher/chat_templates.py).

Run from the repository root with the project's python (it writes a stand-in tokenizer,
then renders in mergekit's side environment, created by tests/oracle/regenerate.py):

    .venv/bin/python tests/oracle/chat_templates.py

mergekit resolves the name the way ``mergekit.merge._set_chat_template`` does (a file of its
package data), and transformers' ``apply_chat_template`` renders it; only the rendered strings
are kept, never mergekit's template files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from regenerate import VENV, ensure_venv  # noqa: E402

from publisher.standins import write_tokenizer  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "chat_templates.json"
NAMES = ("alpaca", "chatml", "exaone", "llama3", "mistral")
CONVERSATIONS: list[dict[str, object]] = [
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "  Hi there  "},
            {"role": "assistant", "content": "Hello! "},
            {"role": "user", "content": "Name a colour."},
        ],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": "What is 2+2?"}], "add_generation_prompt": True},
    {"messages": [{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"}], "add_generation_prompt": False},
    {"messages": [{"role": "system", "content": "Rules.\nLine two."}, {"role": "user", "content": "a"}], "add_generation_prompt": False},
    {
        "messages": [
            {"role": "user", "content": "Summarise."},
            {"role": "user_context", "content": "Some text.\n"},
        ],
        "add_generation_prompt": True,
        "only": ["alpaca", "chatml", "exaone", "llama3"],
    },
]
# Values whose verdict (accepted or "Invalid chat template") mergekit gives is recorded, so
# publisher refuses exactly what mergekit refuses.
VERDICTS = ("base", "none", "default", "chatlm", "ChatML", "{{ x }}", "a long template without a brace", "{{ messages[0].content }}", "auto")

RENDER = r"""
import json, sys, types
import transformers
from mergekit.merge import _set_chat_template
folder, cases = sys.argv[1], json.loads(sys.argv[2])
out = {}
for name in cases["names"]:
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    _set_chat_template(tok, types.SimpleNamespace(chat_template=name))
    rendered = []
    for conv in cases["conversations"]:
        if name not in conv.get("only", [name]):
            continue
        text = tok.apply_chat_template(conv["messages"], tokenize=False, add_generation_prompt=conv["add_generation_prompt"])
        rendered.append({"messages": conv["messages"], "add_generation_prompt": conv["add_generation_prompt"], "rendered": text})
    out[name] = rendered
import importlib.metadata as m
import importlib.resources
from mergekit._data import chat_templates
names = sorted(f.name[: -len(".jinja")] for f in importlib.resources.files(chat_templates).iterdir() if f.name.endswith(".jinja"))
verdicts = {}
for value in cases["verdicts"]:
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    try:
        _set_chat_template(tok, types.SimpleNamespace(chat_template=value, referenced_models=lambda: []))
        verdicts[value] = "accepted"
    except RuntimeError as e:
        verdicts[value] = str(e)
print(json.dumps({"versions": {"mergekit": m.version("mergekit"), "transformers": m.version("transformers")},
                  "templates": out, "names": names, "verdicts": verdicts}))
"""


def main() -> None:
    ensure_venv()
    with tempfile.TemporaryDirectory(prefix="chat-oracle-") as tmp:
        write_tokenizer(Path(tmp), 128)
        cases = json.dumps({"names": list(NAMES), "conversations": CONVERSATIONS, "verdicts": list(VERDICTS)})
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", RENDER, tmp, cases],
            capture_output=True,
            text=True,
            env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        )
    if proc.returncode != 0:
        raise SystemExit(f"rendering failed:\n{proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{FIXTURE}: {sum(len(v) for v in data['templates'].values())} renderings")


if __name__ == "__main__":
    main()
