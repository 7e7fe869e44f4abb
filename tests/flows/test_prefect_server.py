"""The flow against a real ``prefect server start`` on localhost, read back via the client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import pipeline_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, port: int) -> dict[str, str]:
    """The environment of a Prefect server on ``127.0.0.1:port`` and of its clients."""
    env = pipeline_env()
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_ENABLED="false",
    )
    return env


def start_prefect_server(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """``prefect server start`` on the loopback port of ``env``'s PREFECT_API_URL; returns
    once it answers /api/health (its output is appended to ``log_path``)."""
    url = env["PREFECT_API_URL"]
    port = url.rsplit(":", 1)[1].split("/")[0]
    with open(log_path, "a") as log:  # the server keeps its own descriptor
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                port,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(log_path.read_text()[-3000:])
        time.sleep(0.3)
    return server


def stop_prefect_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def prefect_server(tmp_path):
    env = server_env(tmp_path / "prefect-home", _free_port())
    server = start_prefect_server(env, tmp_path / "server.log")
    try:
        yield env
    finally:
        stop_prefect_server(server)


async def _read_back(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        artifacts = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return flow_run, tasks, artifacts


@pytest.mark.slow
def test_flow_run_states_and_artifacts_on_a_real_server(pipeline_repo, prefect_server, monkeypatch):
    code = (
        "import sys; from flows.pipeline import pipeline\n"
        "state = pipeline(repo=sys.argv[1], targets=['train'], return_state=True)\n"
        "print('FLOW_RUN', state.state_details.flow_run_id)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(pipeline_repo)],
        cwd=Path(__file__).resolve().parents[2],
        env=prefect_server,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    flow_run_id = next(
        line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FLOW_RUN")
    )

    for key, value in prefect_server.items():
        monkeypatch.setenv(key, value)
    flow_run, tasks, artifacts = asyncio.run(_read_back(flow_run_id))
    assert flow_run.state.is_completed()
    assert sorted(t.name for t in tasks) == ["dataset", "train", "validate"]
    assert all(t.state.is_completed() for t in tasks)
    keys = {a.key for a in artifacts if a.key}
    assert {"stage-outcomes", "train-metrics"} <= keys, keys
    outcomes = next(a for a in artifacts if a.key == "stage-outcomes")
    assert "ran" in str(outcomes.data)
    assert os.environ.get("PREFECT_API_URL", "").endswith("/api")
