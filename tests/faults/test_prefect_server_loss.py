"""The Prefect server goes away in the middle of a flow run.

A real ``prefect server start`` on a free loopback port (the fixture of
``tests/flows/test_prefect_server.py``) serves ``python -m flows.pipeline train``; the
server is SIGKILLed as soon as the ``train`` stage has started. DVC does not depend on
Prefect: ``validate`` and ``dataset`` were committed before the loss, and ``train``'s ``dvc repro`` goes on
and commits too. The flow then fails on its next API call (reporting the stage's
result), exits non-zero and says why in one line (the server's address, ``Connection
refused``, what DVC kept). Started again on the same
port and database, the server serves a rerun that skips all three stages.

Bounded: the flow runs with ``PREFECT_CLIENT_MAX_RETRIES=0``. With Prefect's default (5
retries per request, exponential backoff) the same flow keeps retrying for about six
minutes before it fails the same way.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from flows.verify import recorded_outputs, verify
from tests.conftest import ROOT, run
from tests.flows.test_prefect_server import start_prefect_server, stop_prefect_server

DVC = [sys.executable, "-m", "dvc"]


def _server_processes(env: dict[str, str]) -> list[psutil.Process]:
    """The ``prefect server start`` serving ``env``'s PREFECT_API_URL (and its children)."""
    port = env["PREFECT_API_URL"].rsplit(":", 1)[1].split("/")[0]
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "server" in cmd and "start" in cmd and "--port" in cmd and port in cmd:
            found += [p, *p.children(recursive=True)]
    return found


def _stage_running(proc: subprocess.Popen, name: str) -> bool:
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if f"stages.{name}" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def _working_in(repo: Path) -> list[str]:
    """Command lines of live processes whose working directory is ``repo``."""
    found = []
    for p in psutil.process_iter(["cwd", "cmdline"]):
        if p.info["cwd"] == str(repo):
            found.append(" ".join(p.info["cmdline"] or []))
    return found


def _flow(repo: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flows.pipeline", "train", "--repo", str(repo)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_losing_the_prefect_server_midway_keeps_what_dvc_committed(
    pipeline_repo, prefect_server, tmp_path
):
    repo = pipeline_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 8  # train outlives the server by a few seconds
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**prefect_server, "PREFECT_CLIENT_MAX_RETRIES": "0"}

    log = tmp_path / "flow.log"
    flow = _flow(repo, env, log)
    deadline = time.monotonic() + 180
    while not _stage_running(flow, "train"):
        assert flow.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "train never started"
        time.sleep(0.1)
    server = _server_processes(prefect_server)
    assert server, "no server process found for the fixture's port"
    for p in server:
        p.kill()
    lost = time.monotonic()
    code = flow.wait(timeout=180)
    output = log.read_text()
    assert code != 0, output[-3000:]
    assert "Connection refused" in output, output[-3000:]
    said = [ln for ln in output.splitlines() if "lost the Prefect API at http://127.0.0.1" in ln]
    assert len(said) == 1 and "a rerun once the server is back skips them" in said[0], output[
        -3000:
    ]
    assert time.monotonic() - lost < 120
    assert _working_in(repo) == [], "a dvc repro or stage outlived the flow"

    # What DVC committed is valid: every stage current, every byte as recorded.
    status = run([*DVC, "status", "validate", "dataset", "train"], repo)
    assert "up to date" in status.stdout, status.stdout
    records = [r for recs in recorded_outputs(repo).values() for r in recs]
    assert {r.stage for r in records} == {"validate", "dataset", "train"}
    assert verify(records) == []

    # The server back on the same port and database: the rerun skips all three stages.
    again = start_prefect_server(prefect_server, tmp_path / "server-again.log")
    try:
        log2 = tmp_path / "rerun.log"
        rerun = _flow(repo, env, log2)
        assert rerun.wait(timeout=300) == 0, log2.read_text()[-3000:]
    finally:
        stop_prefect_server(again)
    output = log2.read_text()
    for stage in ("validate", "dataset", "train"):
        assert f"Stage '{stage}' didn't change (dvc status), skipping" in output, output[-3000:]
    assert "Running stage" not in output
