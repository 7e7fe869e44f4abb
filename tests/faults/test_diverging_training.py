"""A training that diverges stops with one line naming the stage's params, and writes no
checkpoint.

``train.optimizer.lr: 1e6`` (a typo for 1e-6, say) makes the tiny classifier's loss NaN
or infinite within a few steps. :func:`advinterp.models.training.fit` checks the loss of
every batch and the weights after every epoch, and stops; the stage exits 2 with one
``ERROR advinterp.stage: train.optimizer.lr=1e+06 (...): training diverged: ...`` line and
writes none of its outputs. Under ``dvc repro`` DVC's own line names the stage as well
(``failed to reproduce 'train'``) and dvc.lock keeps the previous run. The loop itself
is unit-tested in ``tests/models/test_training.py``.
"""

from __future__ import annotations

import yaml

from tests.conftest import deep_update
from tests.faults.conftest import run_stage
from tests.stages.stage_world import declared


def test_absurd_learning_rate_stops_train_with_one_line_and_no_checkpoint(tiny_dataset, tmp_path):
    params, dataset = tiny_dataset
    bad = tmp_path / "params.yaml"
    absurd = {"train": {"epochs": 3, "optimizer": {"lr": 1e6}}}
    bad.write_text(yaml.safe_dump(deep_update(yaml.safe_load(params.read_text()), absurd)))
    out = tmp_path / "out"
    out.mkdir()
    train = declared("train")
    paths = {
        "dataset": dataset,
        **{f: out / o.path.split("/")[-1] for f, o in train.outputs.items()},
    }
    proc = run_stage("train", bad, paths)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1], proc.stderr
    line = errors[0].split(" ERROR advinterp.stage: ", 1)[1]
    assert line.startswith("train.optimizer.lr=1e+06 (train.optimizer.name=sgd, "), line
    assert "training diverged:" in line and "lower the learning rate" in line, line
    assert list(out.iterdir()) == [], "a diverged training wrote something"
