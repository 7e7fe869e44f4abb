"""Attribute chain II through a real ``dvc repro`` in a scratch repository."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import first_seed, ran_stages, run, stage_names

DVC = [sys.executable, "-m", "dvc"]


@pytest.mark.slow
def test_repro_ground_and_distances(pipeline_repo):
    out = run([*DVC, "repro", "ground", "distances"], pipeline_repo)
    ran = stage_names(ran_stages(out.stdout))
    assert {"train_detector", "detect", "ground", "distances"} <= ran, out.stdout
    art = pipeline_repo / "artifacts"
    det = json.loads((art / "train_detector/metrics.json").read_text())
    assert det["epochs"] >= 1 and "mAP" in det
    grd = json.loads((art / "ground/metrics.json").read_text())
    assert {"untargeted", "targeted", "at"} <= set(grd)
    dist = json.loads((pipeline_repo / first_seed("artifacts/distances/metrics.json")).read_text())
    assert set(dist["closer_to_wrong_class"]) == {"untargeted", "targeted"}
    for png in (
        "ground/figure6_untargeted.png",
        "ground/figure6_at.png",
        "distances/seed_0/figure5_untargeted.png",
        "distances/seed_0/figure5_targeted.png",
    ):
        assert (art / png).read_bytes()[:4] == b"\x89PNG", png
    assert not list(pipeline_repo.glob("**/.*.tmp-*")), "temporary outputs left behind"
    again = run([*DVC, "repro", "ground", "distances"], pipeline_repo)
    assert "Running stage" not in again.stdout, again.stdout
