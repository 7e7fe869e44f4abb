#!/usr/bin/env bash
# Install, then run the whole pipeline on the configured dataset (the embedded one by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
dvc repro "$@"
dvc metrics show
