#!/usr/bin/env bash
# Install, then lint, type-check, the generated-file drift checks, and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages: Debian's chromium for the real-browser test of the report
# (tests/test_report_browser.py). Nothing to do when it is on PATH already; where it
# cannot be installed (not root, no apt-get, no mirror) that test fails and says why.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium (apt-get) for tests/test_report_browser.py" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                chromium fonts-liberation >/dev/null; } \
            || echo "scripts/test.sh: installing chromium failed; the browser test will fail" >&2
    else
        echo "scripts/test.sh: no chromium and no root apt-get to install it;" \
            "tests/test_report_browser.py will fail (ADVINTERP_ALLOW_NO_BROWSER=1 skips it)" >&2
    fi
fi
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check advinterp stages flows bench tests
mypy                                   # the library (files and settings in pyproject.toml)
python -m flows.generate dvc-yaml --check      # dvc.yaml is what the stage declarations generate
python -m flows.generate docs --check          # README/docs numbers are what the metrics say
# Two workers, one test module at a time each (pytest-xdist): most of the suite's time is
# single-threaded stage processes and DVC, so the two cores of a CI machine both work
# (14.9 min against 25.9 min in one process, measured on 2 cores; the longest modules first).
python -m pytest -n "${ADVINTERP_TEST_WORKERS:-2}" --dist loadfile "$@"
