#!/usr/bin/env bash
# Creates .venv and installs publisher into it. Pinned CPU torch goes in first so that
# nothing later can pull a multi-GB CUDA build. Re-running is quick: it only reinstalls
# when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu on GitHub runners) picks the CPU
  # wheel where the default index would serve a CUDA build.
  .venv/bin/python -m pip install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
