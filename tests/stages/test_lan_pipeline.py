"""Nguyen et al.'s stages through a real ``dvc repro lan_detect`` in a scratch repo.

Paths come from the stage declarations, so the test follows them.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from advinterp.store import open_store
from stages import lan_attacks, lan_detect, lan_train, mask_classifier
from tests.conftest import run

DVC = [sys.executable, "-m", "dvc"]


def _path(stage, flag):
    return stage.STAGE.outputs[flag].path


@pytest.mark.slow
def test_repro_lan_detect_end_to_end(pipeline_repo):
    out = run([*DVC, "repro", "lan_detect"], pipeline_repo)
    repo = pipeline_repo
    for stage in ("lan_train", "mask_classifier", "lan_attacks", "lan_detect"):
        assert f"Running stage '{stage}'" in out.stdout

    dataset = open_store(repo / lan_train.STAGE.inputs["dataset"])
    masks = open_store(repo / _path(lan_train, "masks"), {"masks": 4})["masks"][:]
    assert masks.shape == dataset["images"].shape
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    lan = json.loads((repo / _path(lan_train, "metrics")).read_text())
    assert 0.0 <= lan["f1_agreement_corrupted_test"] <= 1.0
    f2 = json.loads((repo / _path(mask_classifier, "metrics")).read_text())
    assert 0.0 <= f2["test_accuracy"] <= 1.0 and f2["chance"] == 0.25

    adv = open_store(repo / _path(lan_attacks, "out"), {"images": 4, "rows": 1})
    settings = adv.attrs["settings"]
    assert settings == [f"{s}/{a}" for s in ("direct", "transfer") for a in ("fgsm", "jsma", "cw")]
    labels = dataset["labels"][:]
    rows = adv["rows"][:]
    assert np.all(adv["f1_pred"][:] != adv["labels"][:])  # only examples that fool f1
    assert np.array_equal(adv["labels"][:], labels[rows])
    assert np.all(dataset["split"][:][rows] == 2)  # test images only
    attack_stats = json.loads((repo / _path(lan_attacks, "metrics")).read_text())
    assert attack_stats["direct"]["fgsm"]["attacked"] >= 1

    metrics = json.loads((repo / _path(lan_detect, "metrics")).read_text())
    for table in ("table2_direct", "table3_transfer"):
        assert set(metrics[table]) == {"fgsm", "jsma", "cw"}
    for row in metrics["table2_direct"].values():
        assert row["n_benign"] == row["n_adversarial"]  # balanced
        for k in ("true_positive", "true_negative"):
            assert row[k] is None or 0.0 <= row[k] <= 1.0
    assert isinstance(metrics["ifgsm"], dict) and metrics["ifgsm"]  # the chain's examples
    for name in ("direct_fgsm", "transfer_cw"):
        curve = pd.read_csv(repo / _path(lan_detect, "roc") / f"{name}.csv")
        assert list(curve.columns) == ["fpr", "tpr"]
    pngs = [_path(lan_train, "figure"), _path(lan_detect, "roc_figure")]
    for png in [*pngs, _path(lan_detect, "figure")]:
        assert (repo / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(repo.glob("**/.*.tmp-*")), "temporary outputs left behind"

    again = run([*DVC, "repro", "lan_detect"], repo)
    assert "Running stage" not in again.stdout, again.stdout
