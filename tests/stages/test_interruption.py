"""A run killed with SIGKILL midway loses nothing: the previous artifact stays retrievable,
no half-written output is left where an output belongs, and the rerun completes.

(Resuming chunked stages from their completed shards is tested with the shard machinery,
tests/test_store.py and the stage tests of the resume work.)
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advinterp.models.checkpoint import load_classifier
from tests.conftest import pipeline_env, run
from tests.stages.stage_world import declared

DVC = [sys.executable, "-m", "dvc"]
TRAIN = declared("train")
TRAIN_OUTS = tuple(o.path for o in TRAIN.outputs.values())
# Every output a `dvc repro train` may write: train's and its upstream stages'.
REPRO_OUTS = tuple(
    o.path for name in ("validate", "dataset", "train") for o in declared(name).outputs.values()
)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def hidden_leftovers(repo: Path) -> list[Path]:
    """Temporary or partial siblings (``.<name>.tmp-*``, ``.<name>.partial-*``...)."""
    skip = {".git", ".dvc"}
    return sorted(
        p
        for p in repo.rglob(".*")
        if not skip & set(p.relative_to(repo).parts)
        and (".tmp-" in p.name or ".partial-" in p.name)
    )


def untracked(repo: Path) -> list[str]:
    """Files git would show as new, apart from DVC's own files and the declared outputs of
    train and its upstream stages."""
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout
    expected = (".gitignore", "dvc.lock", *REPRO_OUTS)
    return [
        line
        for line in status.splitlines()
        if line.startswith("??") and not line[3:].endswith(expected)
    ]


def start_killable(cmd: list[str], cwd: Path) -> subprocess.Popen:
    """``cmd`` in its own process group (so the stage it spawns can be killed with it)."""
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=pipeline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_sigkill_midway_keeps_the_previous_artifact_and_rerun_completes(pipeline_repo):
    repo = pipeline_repo
    run([*DVC, "repro", "train"], repo)
    model = repo / TRAIN.outputs["model"].path
    first = md5(model)
    lock_before = (repo / "dvc.lock").read_text()

    # A longer training run, killed (with the dvc process that runs it) on its first log line.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["epochs"] = 12
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = start_killable([*DVC, "repro", "train"], repo)
    seen = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        seen.append(line)
        if "advinterp" in line:  # the stage itself has started and is working
            break
        assert time.monotonic() < deadline, "".join(seen)
    else:
        pytest.fail("the stage never logged:\n" + "".join(seen))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # Nothing half-written where an output belongs: each declared output is either absent
    # (DVC removes outs before running a stage) or still the complete previous one.
    if model.exists():
        assert md5(model) == first
    # What the kill left is hidden temporary siblings at most, never a declared output,
    # and git does not show them either (.gitignore).
    for left in hidden_leftovers(repo):
        assert left.name.startswith("."), left
        assert str(left.relative_to(repo)) not in TRAIN_OUTS
    assert untracked(repo) == []
    # DVC still records the previous, complete run; the stage is not taken as done.
    assert (repo / "dvc.lock").read_text() == lock_before
    status = run([*DVC, "status", "train"], repo)
    assert "changed" in status.stdout, status.stdout

    # The previous artifact is retrievable from the cache, bit for bit.
    run([*DVC, "checkout", "--force", "train"], repo)
    assert md5(model) == first
    load_classifier(model)

    # The rerun completes, and leaves nothing behind.
    rerun = run([*DVC, "repro", "train"], repo)
    assert "Running stage 'train'" in rerun.stdout
    assert md5(model) != first
    assert load_classifier(model).num_classes == 4
    assert "up to date" in run([*DVC, "status", "train"], repo).stdout
    assert hidden_leftovers(repo) == []
    assert untracked(repo) == []
