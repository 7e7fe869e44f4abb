#!/usr/bin/env bash
# Create .venv (Python 3.11) and install advinterp with everything it needs.
# Safe to rerun: an existing .venv is reused and only missing packages are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"advinterp needs Python 3.11, found {sys.version.split()[0]} (set PYTHON=...)")
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch/torchvision first, pinned, so nothing else pulls a different build.
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e '.[dev]'
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
