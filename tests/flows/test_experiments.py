"""DVC experiments on the pipeline (issue #17 item 4), in a scratch repository with the
embedded default's tiny params: a sweep queued with ``dvc exp run --queue -S`` and run by
``dvc queue start -j 2`` while ``dvc exp run -S attack.eps=...`` runs in the workspace,
``dvc exp show`` holding all three beside the baseline, and ``dvc exp apply``.

The queue's workers are processes DVC starts (``dvc exp queue-worker``, then ``dvc exp
exec-run`` per experiment, in a copy of the repository under ``.dvc/tmp/exps``): both
are found as ``dvc`` on the PATH of ``dvc queue start``, whose environment they inherit,
and run the stages' ``python -m stages.X`` with it. ``pipeline_env`` puts this
interpreter's bin directory first, as an activated virtual environment does.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advinterp.markdown import lookup
from tests.conftest import TINY_PARAMS, pipeline_env, ran_stages, run, scratch_repo
from tests.stages.stage_world import declared

DVC = [sys.executable, "-m", "dvc"]
MODEL = declared("train").outputs["model"].path
TRAIN_METRICS = declared("train").outputs["metrics"].path
ATTACK_METRICS = declared("attack").outputs["metrics"].path
SWEEP = {"slow-lr": 0.01, "fast-lr": 0.2}  # queued experiments: name -> train.optimizer.lr
# The workspace experiment's attack grid: a smaller one that still holds 0.06, the eps
# adv_train and the other stages' tiny params use (validate checks they are in the grid).
EPS = [0.01, 0.06]
QUEUE_WAIT_S = 400.0
# A task row of `dvc queue status`: task id, name, created (date and/or time), status.
TASK_ROW = re.compile(r"^(?P<task>[0-9a-f]{7})\s+(?P<name>\S+)\s.*\s(?P<status>\w+)\s*$")


def _queue_states(repo: Path) -> dict[str, str]:
    """``dvc queue status`` as {experiment name: Queued | Running | Success | Failed}."""
    out = run([*DVC, "queue", "status"], repo).stdout
    rows = [TASK_ROW.match(line) for line in out.splitlines()]
    return {r["name"]: r["status"] for r in rows if r}


def _start_queue(repo: Path, jobs: int) -> None:
    """``dvc queue start -j <jobs>``, its output to a file: the workers it starts inherit
    its stdout and stderr, so a pipe there would stay open until they exit."""
    log = repo / ".dvc" / "tmp" / "queue-start.log"
    with log.open("w") as out:
        cmd = [*DVC, "queue", "start", "-j", str(jobs)]
        code = subprocess.run(cmd, cwd=repo, env=pipeline_env(), stdout=out, stderr=out).returncode
    assert code == 0, log.read_text()


def _wait_for_queue(repo: Path, names: set[str]) -> dict[str, str]:
    deadline = time.monotonic() + QUEUE_WAIT_S
    while True:
        states = _queue_states(repo)
        if all(states.get(n) in {"Success", "Failed"} for n in names):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"queued experiments not done in {QUEUE_WAIT_S:.0f} s: {states}")
        time.sleep(2)


def _experiments(repo: Path) -> tuple[dict, dict[str, dict]]:
    """``dvc exp show --json``: the baseline commit's row and its experiments' by name,
    each ``{"rev": commit, "data": {params, metrics, outs, ...}, "executor": ...}``."""
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    rows = json.loads(run([*DVC, "exp", "show", "--json"], repo).stdout)
    baseline = next(r for r in rows if r["rev"] == head)
    exps = {
        e["name"]: {
            "rev": e["revs"][0]["rev"],
            "data": e["revs"][0]["data"],
            "executor": e["executor"],
        }
        for e in baseline["experiments"] or []
    }
    return baseline["data"], exps


def _param(data: dict, key: str):
    return lookup(data["params"]["params.yaml"]["data"], key)


def _metrics(data: dict, path: str) -> dict:
    return data["metrics"][path]["data"]


def _model_hash(data: dict) -> str:
    return data["outs"][MODEL]["hash"]


def _md5(path: Path) -> str:
    """The hash DVC records for a file output."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def _attack_grid(data: dict) -> set[str]:
    """The eps keys of the attack's metrics (``eps_0.01``, ...)."""
    return set(_metrics(data, ATTACK_METRICS)["standard"]["untargeted"])


def _lock_entry(lock_text: str, stage: str) -> dict:
    return yaml.safe_load(lock_text)["stages"][stage]


def _assert_applied_or_only_unrun_outputs_missing(proc, repo: Path) -> None:
    """``dvc exp apply`` ends with a ``dvc checkout`` of every output in dvc.yaml: here,
    where only attack and its upstream ever ran, it reports the others' outputs (no hash
    in dvc.lock) as failed, after applying the experiment. Nothing else may fail."""
    if proc.returncode == 0:
        return
    text = proc.stderr
    assert "Checkout failed for following targets:" in text, text
    failed = text.split("Checkout failed for following targets:")[1]
    failed = {ln.strip() for ln in failed.split("Is your cache up to date?")[0].splitlines()}
    locked = {
        o["path"]
        for s in yaml.safe_load((repo / "dvc.lock").read_text())["stages"].values()
        for o in s.get("outs", [])
    }
    assert failed - {""} and not (failed & locked), (failed & locked, text)


@pytest.mark.slow
def test_queued_sweep_beside_a_workspace_experiment_then_show_and_apply(tmp_path):
    assert shutil.which("dvc", path=pipeline_env()["PATH"]) == str(
        Path(sys.executable).parent / "dvc"
    ), "dvc queue starts its workers as `dvc` from PATH: it must be this interpreter's"
    repo = scratch_repo(tmp_path / "repo")
    run([*DVC, "repro", "attack"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline: the attack stage and its upstream"], repo)
    before = {p: (repo / p).read_bytes() for p in (MODEL, TRAIN_METRICS, "dvc.lock")}

    # A sweep queued: queueing stashes each variant and leaves the workspace as it was.
    for name, lr in SWEEP.items():
        run(
            [*DVC, "exp", "run", "--queue", "-n", name, "-S", f"train.optimizer.lr={lr}", "train"],
            repo,
        )
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    _start_queue(repo, jobs=2)
    try:
        # Meanwhile an experiment in the workspace: the queued ones run in their own
        # copies of the repository and hold none of the workspace's locks.
        eps = f"attack.eps={json.dumps(EPS)}"
        here = run([*DVC, "exp", "run", "-n", "two-eps", "-S", eps, "attack"], repo)
        assert ran_stages(here.stdout) == {"validate", "attack"}, here.stdout
        states = _wait_for_queue(repo, set(SWEEP))
    except BaseException:
        run([*DVC, "queue", "stop", "--kill"], repo, check=False)
        raise
    run([*DVC, "queue", "stop"], repo)  # the idle workers exit now, not after their timeout
    logs = {n: run([*DVC, "queue", "logs", n], repo, check=False).stdout for n in SWEEP}
    assert states == dict.fromkeys(SWEEP, "Success"), logs
    for name in SWEEP:  # each reran train alone: its upstream came from the cache
        assert ran_stages(logs[name]) == {"train"}, logs[name]

    baseline, exps = _experiments(repo)
    assert set(exps) == {*SWEEP, "two-eps"}, sorted(exps)

    # Side by side: each row holds its own params and metrics.
    for name, lr in SWEEP.items():
        data = exps[name]["data"]
        assert exps[name]["executor"]["name"] == "dvc-task", exps[name]["executor"]
        assert exps[name]["executor"]["state"] == "success", exps[name]["executor"]
        assert _param(data, "train.optimizer.lr") == lr
        assert _param(data, "attack.eps") == TINY_PARAMS["attack"]["eps"]
        assert 0.0 <= _metrics(data, TRAIN_METRICS)["test_accuracy"] <= 1.0
    assert _param(baseline, "train.optimizer.lr") not in SWEEP.values()
    models = {n: _model_hash(exps[n]["data"]) for n in SWEEP}
    assert len({_model_hash(baseline), *models.values()}) == 3, models  # three trainings

    mine = exps["two-eps"]["data"]
    assert _param(mine, "attack.eps") == EPS
    assert _param(mine, "train.optimizer.lr") == _param(baseline, "train.optimizer.lr")
    assert _model_hash(mine) == _model_hash(baseline)  # train not rerun
    assert _attack_grid(mine) == {f"eps_{e}" for e in EPS}
    assert _attack_grid(baseline) == {f"eps_{e}" for e in TINY_PARAMS["attack"]["eps"]}

    # The workspace holds the workspace experiment alone: the queued runs left its
    # dvc.lock, train's outputs and params as they were.
    for path in (MODEL, TRAIN_METRICS):
        assert (repo / path).read_bytes() == before[path], path
    lock = (repo / "dvc.lock").read_text()
    assert lock == run(["git", "show", f"{exps['two-eps']['rev']}:dvc.lock"], repo).stdout
    assert _lock_entry(lock, "train") == _lock_entry(before["dvc.lock"].decode(), "train")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["attack"]["eps"] == EPS
    assert params["train"]["optimizer"]["lr"] == _param(baseline, "train.optimizer.lr")

    # Applying a queued experiment brings its params, dvc.lock and outputs here.
    applied = run([*DVC, "exp", "apply", "slow-lr"], repo, check=False)
    _assert_applied_or_only_unrun_outputs_missing(applied, repo)
    data = exps["slow-lr"]["data"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["train"]["optimizer"]["lr"] == SWEEP["slow-lr"]
    assert params["attack"]["eps"] == TINY_PARAMS["attack"]["eps"]
    assert _md5(repo / MODEL) == _model_hash(data)
    assert json.loads((repo / TRAIN_METRICS).read_text()) == _metrics(data, TRAIN_METRICS)
    assert "up to date" in run([*DVC, "status", "train"], repo).stdout
