#!/usr/bin/env bash
# Install, then lint, type-check, the generated-file drift checks, and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check advinterp stages flows bench tests
mypy                                   # the library (files and settings in pyproject.toml)
python -m flows.generate dvc-yaml --check      # dvc.yaml is what the stage declarations generate
python -m flows.generate docs --check          # README/docs numbers are what the metrics say
python -m pytest "$@"
