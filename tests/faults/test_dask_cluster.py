"""A sharded stage on an existing Dask cluster, and on one that loses a worker midway.

The cluster is started the way a user starts one, from the installed ``distributed``
CLI, on loopback only: ``dask scheduler`` and two ``dask worker --no-nanny`` processes
(no nanny: a killed worker stays dead instead of being restarted). ``params.yaml``'s
``scale.address`` points the ``features`` stage at it. The stage's shards must equal the
single-process run bit for bit; then one worker is SIGKILLed while it computes a shard,
and the stage either completes (Dask reschedules the lost shard on the other worker) or
fails with a clear error and its rerun resumes; either way the result is bitwise equal.

Inputs, the local reference run (fixtures ``inputs`` and ``reference``, see
``conftest.py``) and the helpers are those of ``tests/stages/test_shards.py``: 40
images in 5 shards of 8, a small classifier.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from advinterp.shards import DELAY_ENV
from tests.conftest import ROOT
from tests.stages.test_shards import SHARDS, _assert_same, _env, _features_cmd, _params

DASK = str(Path(sys.executable).parent / "dask")
SHARD_DELAY = "1.0"  # seconds each shard sleeps in the lost-worker run: time to kill one
# Imported by each worker as it starts, so its first shard does not pay for torch and
# Prefect (the cluster starts while the reference run is computed).
PRELOAD = "import torch, prefect, prefect_dask, advinterp.models.features  # noqa\n"


def _run_features(d: Path, params: Path, out: Path) -> subprocess.CompletedProcess:
    """The features stage, run to its end with the test's environment."""
    return subprocess.run(
        _features_cmd(d, params, out),
        cwd=ROOT,
        env=_env(d),
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen]
    migrate: subprocess.Popen  # wait for it before the first stage run
    logs: Path  # <name>.log of the scheduler and each worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    finally:
        for p in procs:  # each in its own session: its children go with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(inputs, tmp_path_factory) -> Iterator[Cluster]:
    """A scheduler and two workers on 127.0.0.1.

    Module-scoped and requested before ``reference``, so the workers import torch while
    the reference run computes; the stages' Prefect database is migrated meanwhile too.
    """
    d = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    preload = d / "preload.py"
    preload.write_text(PRELOAD)
    env = _env(inputs, PYTHONPATH=str(ROOT))
    with _processes() as procs:

        def start(name: str, cmd: list[str]) -> subprocess.Popen:
            with open(d / f"{name}.log", "w") as log:  # the child keeps its own descriptor
                p = subprocess.Popen(
                    cmd,
                    cwd=d,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            procs.append(p)
            return p

        start(
            "scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        )
        workers = [
            start(
                f"worker{i}",
                [
                    DASK,
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--no-nanny",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                    "--preload",
                    str(preload),
                    "--local-directory",
                    str(d / f"w{i}"),
                ],
            )
            for i in range(2)
        ]
        migrate = start(  # the temporary Prefect server each stage run starts uses this DB
            "migrate",
            [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        )
        yield Cluster(address, workers, migrate, d)


def _slow_shards(delay: str) -> None:
    """Set the shard delay test hook in a worker process (read at each shard)."""
    os.environ[DELAY_ENV] = delay


def _executing(dask_worker) -> int:
    """How many tasks a worker is computing (run in its event loop, not its task thread)."""
    return len(dask_worker.state.executing)


def _markers(d: Path, name: str) -> list[Path]:
    return list(d.glob(f".{name}.partial-*/shards/*/*.done"))


@pytest.mark.slow
def test_features_on_an_existing_cluster_and_after_losing_a_worker(inputs, cluster, reference):
    from distributed import Client

    d = inputs
    assert cluster.migrate.wait(timeout=120) == 0
    with Client(cluster.address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        w0 = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "w0")
        params = _params(d, "existing", {"executor": "dask", "address": cluster.address})

        # 1. The running cluster computes what the single process computed, bit for bit.
        out = d / "existing.zarr"
        ok = _run_features(d, params, out)
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert f"shards go to the Dask cluster at {cluster.address}" in ok.stderr
        assert f"features: {SHARDS} shards done by" in ok.stderr
        _assert_same(out, reference)

        # 2. Worker w0 is SIGKILLed while it computes a shard, after another one finished.
        client.run(_slow_shards, SHARD_DELAY)
        out = d / "lost.zarr"
        log = d / "lost.log"
        with open(log, "w") as f:
            proc = subprocess.Popen(
                _features_cmd(d, params, out),
                cwd=ROOT,
                env=_env(d),
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 240
        while not (_markers(d, "lost.zarr") and client.run(_executing, workers=[w0])[w0]):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "w0 never computed a shard after another finished"
            time.sleep(0.1)
        cluster.workers[0].send_signal(signal.SIGKILL)
        cluster.workers[0].wait(timeout=30)
        done_at_kill = len(_markers(d, "lost.zarr"))
        proc.wait(timeout=300)
    stderr = log.read_text()
    assert 1 <= done_at_kill < SHARDS, stderr[-3000:]
    assert f"Remove worker addr: {w0} name: w0" in (cluster.logs / "scheduler.log").read_text()
    if proc.returncode != 0:  # failed: it must say so in one line, and the rerun resumes
        assert " ERROR " in stderr.strip().splitlines()[-1], stderr[-3000:]
        again = _run_features(d, params, out)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "already complete" in again.stderr
    else:  # completed: the lost worker's shards ran again on the surviving one
        assert f"features: {SHARDS}/{SHARDS} shard" in stderr
    _assert_same(out, reference)
    assert not list(d.glob(".lost.zarr.*")), "partial left after success"
