"""Team cache sharing for real: clone A computes and pushes, clone B pulls and reruns nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run
from tests.stages.stage_world import declared

DVC = [sys.executable, "-m", "dvc"]
TARGETS = ["features"]  # dataset -> train -> features: every kind of output (zarr dirs, .pt, json)
DATASET = declared("dataset").outputs["out"].path
TRAIN_METRICS = declared("train").outputs["metrics"].path


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_push_in_clone_a_pull_in_clone_b_reruns_nothing(pipeline_repo, tmp_path):
    remote = tmp_path / "remote"
    a = pipeline_repo
    run([*DVC, "remote", "add", "-d", "team", str(remote)], a)
    run([*DVC, "repro", *TARGETS], a)
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "results"], a)
    run([*DVC, "push"], a)
    metrics_a = json.loads((a / TRAIN_METRICS).read_text())

    b = tmp_path / "clone-b"
    subprocess.run(["git", "clone", "-q", str(a), str(b)], check=True)
    assert not (b / DATASET).exists()
    run([*DVC, "pull", "--with-deps", *TARGETS], b)
    assert (b / DATASET).is_dir()
    status = run([*DVC, "status", *TARGETS], b)
    assert "up to date" in status.stdout, status.stdout
    again = run([*DVC, "repro", *TARGETS], b)
    assert _ran(again.stdout) == [], again.stdout
    assert json.loads((b / TRAIN_METRICS).read_text()) == metrics_a
