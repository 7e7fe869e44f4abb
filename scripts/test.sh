#!/usr/bin/env bash
# Install, then run lint and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
python -m pytest "$@"
