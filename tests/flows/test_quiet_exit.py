"""A pytest run that runs a flow ends without Prefect's "Logging error" traceback.

Prefect's console handler writes to the ``sys.stderr`` it found when Prefect was
imported: under pytest, the capture stream that pytest closes at the end of the session.
The temporary API server that a flow run starts stops at interpreter exit and logs
"Stopping temporary server" to that closed stream; ``tests/conftest.py`` stops it at
session end instead (``pytest_sessionfinish``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, pipeline_env

# -p tests.conftest: the project's conftest, which every run of the tests/ tree loads.
PYTEST = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]

_TEST = """
from prefect import flow


@flow
def hello() -> int:
    return 1


def test_a_flow_on_the_temporary_server():
    assert hello() == 1
"""


@pytest.mark.slow
def test_a_pytest_run_of_a_flow_ends_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the inner run's own rootdir
    (tmp_path / "test_hello.py").write_text(_TEST)
    env = pipeline_env()
    env.pop("PREFECT_API_URL", None)  # the flow starts a temporary server in the inner run
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    proc = subprocess.run(
        [*PYTEST, "-q", str(tmp_path / "test_hello.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "1 passed" in proc.stdout, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "Logging error" not in output, output[-3000:]
