"""Two runs at once in one workspace corrupt nothing: a second ``dvc repro`` fails with a
clear message about DVC's workspace lock, a second flow run waits for the lock, and the
artifacts are intact afterwards.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness

from advinterp.data.artifact import open_dataset, read_index
from advinterp.models.checkpoint import load_classifier
from flows.pipeline import pipeline
from tests.conftest import pipeline_env, run
from tests.stages.stage_world import declared

DVC = [sys.executable, "-m", "dvc"]
# DVC's words: the workspace lock (dvc/lock.py) or an output's read/write lock (dvc/rwlock.py).
LOCK_MESSAGES = ("Unable to acquire lock", "is busy, it is being blocked by")


def _longer_training(repo: Path, epochs: int) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = epochs
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def assert_intact(repo: Path) -> None:
    """Every artifact of train's pipeline readable, DVC status clean, a repro a no-op."""
    assert "up to date" in run([*DVC, "status", "train"], repo).stdout
    again = run([*DVC, "repro", "train"], repo)
    assert "Running stage" not in again.stdout, again.stdout
    index = read_index(open_dataset(repo / declared("dataset").outputs["out"].path))
    model = load_classifier(repo / declared("train").outputs["model"].path)
    assert model.num_classes == len(index.class_names)


@pytest.mark.slow
def test_two_dvc_repro_at_once_one_fails_on_the_lock(pipeline_repo):
    repo = pipeline_repo
    _longer_training(repo, 8)  # holds the lock for a while
    env = pipeline_env()
    procs = [
        subprocess.Popen(
            [*DVC, "repro", "train"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert codes.count(0) == 1, (codes, outputs)
    loser = outputs[1 - codes.index(0)]
    assert any(m in loser for m in LOCK_MESSAGES), loser
    assert "Running stage" not in loser, "the refused run must not have touched any stage"
    assert_intact(repo)


def _stage_running(name: str) -> bool:
    """A ``python -m stages.<name>`` below this process (the flow's dvc repro) is running."""
    for child in psutil.Process().children(recursive=True):
        try:
            if f"stages.{name}" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


@pytest.mark.slow
def test_two_flow_runs_at_once_the_second_waits_for_the_lock_then_skips(pipeline_repo):
    """The flow retries DVC's lock instead of failing: the second run waits while the
    first one's ``dvc repro`` holds it, then DVC finds every stage current."""
    repo = pipeline_repo
    _longer_training(repo, 30)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with (
        prefect_test_harness(server_startup_timeout=180),
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        # Each flow runs in its own thread with a copy of this context (the harness's
        # settings live in context variables).
        first = pool.submit(
            contextvars.copy_context().run, pipeline, repo=str(repo), targets=["train"]
        )
        deadline = time.monotonic() + 300
        while not _stage_running("train"):
            assert not first.done(), first.result()
            assert time.monotonic() < deadline, "the first flow never started train"
            time.sleep(0.2)
        second = pool.submit(
            contextvars.copy_context().run, pipeline, repo=str(repo), targets=["train"]
        )
        waited = second.result(timeout=600)
        results = first.result(timeout=600)
    upstream = ("validate", "dataset", "train")
    assert [(r.name, r.outcome) for r in results] == [(name, "ran") for name in upstream]
    assert [(r.name, r.outcome) for r in waited] == [(name, "skipped") for name in upstream]
    first_train = next(r for r in results if r.name == "train")
    # DVC releases the repository lock while a stage's command runs and keeps read/write
    # locks on that stage's deps and outs: validate (train does not read it) goes through
    # at once; dataset (train reads it) and train itself wait for the first run's train.
    blocked = [r for r in waited if r.name in ("dataset", "train")]
    assert min(r.finished for r in blocked) >= first_train.finished - 1.0  # they did wait
    assert_intact(repo)
