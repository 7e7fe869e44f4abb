"""The flow served as a deployment (``python -m flows.serve``) on a real Prefect server:
a run started with ``prefect deployment run`` and chosen targets, read back via the API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, ParameterTypeError, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.pipeline import pipeline
from tests.flows import test_prefect_server as real_server

# The real `prefect server start` on a free loopback port, and its read-back helper.
prefect_server = real_server.prefect_server

DEPLOYMENT = "advinterp/pipeline"
# What a user types (README, "Three ways to run"), with this interpreter's prefect.
TRIGGER = [sys.executable, "-m", "prefect", "deployment", "run", DEPLOYMENT]
TRIGGER += ["-p", 'targets=["train"]', "-p", "force=true", "-p", "jobs=1"]


def test_jobs_is_at_least_one():
    """The flow's parameter schema (the deployment's, and the UI's run form) says so."""
    assert pipeline.parameters.properties["jobs"]["minimum"] == 1
    assert pipeline.validate_parameters({"jobs": 2})["jobs"] == 2
    with pytest.raises(ParameterTypeError, match="jobs"):
        pipeline.validate_parameters({"jobs": 0})


def _wait_for_deployment(serve: subprocess.Popen, log: Path, timeout: float = 120) -> UUID:
    """The deployment's id, once the serve process has registered it (fails if the process
    died or time ran out)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(DEPLOYMENT).id
            except ObjectNotFound:
                pass
            if serve.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no deployment {DEPLOYMENT}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops serving; then kill its whole process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # a flow run or dvc child left behind
    proc.wait(timeout=10)


@pytest.mark.slow
def test_a_deployment_run_with_targets_from_the_cli(pipeline_repo, prefect_server, tmp_path):
    env = dict(prefect_server)
    log_path = tmp_path / "serve.log"
    with (
        temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}),
        open(log_path, "w") as log,
    ):
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.serve"],
            cwd=pipeline_repo,  # the scratch repo's own flows/ and stages/
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deployment_id = _wait_for_deployment(serve, log_path)
            with (
                get_client(sync_client=True) as client,
                pytest.raises(PrefectHTTPStatusError, match="jobs"),
            ):  # the parameter schema the UI form also enforces
                client.create_flow_run_from_deployment(deployment_id, parameters={"jobs": 0})
            run = subprocess.run(
                [*TRIGGER, "--watch", "--watch-timeout", "240"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            _stop(serve)
        served = log_path.read_text()
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:] + served[-3000:]
        created = re.search(r"UUID: (\S+)", run.stdout)
        assert created, run.stdout
        flow_run, tasks, artifacts = asyncio.run(real_server._read_back(created.group(1)))

    assert flow_run.state.is_completed()
    assert flow_run.parameters["targets"] == ["train"]
    assert flow_run.parameters["repo"] == str(pipeline_repo.resolve())  # the served default
    assert sorted((t.name, t.state.type.value) for t in tasks) == [
        ("dataset", "COMPLETED"),
        ("train", "COMPLETED"),
        ("validate", "COMPLETED"),
    ]
    by_key = {a.key: a for a in artifacts if a.key}
    assert {"stage-outcomes", "train-metrics"} <= set(by_key), by_key.keys()
    assert by_key["stage-outcomes"].type == "table"
    assert "ran" in str(by_key["stage-outcomes"].data)
    assert "test_accuracy" in str(by_key["train-metrics"].data)
    for out in ("data/dataset.zarr", "artifacts/train/model.pt", "artifacts/train/metrics.json"):
        assert (pipeline_repo / out).exists(), out
    assert "Traceback" not in served, served[-3000:]  # the flow run's process exits quietly
