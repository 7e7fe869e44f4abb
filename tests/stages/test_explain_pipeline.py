"""Göpfert et al.'s stages through a real ``dvc repro explain_eval`` in a scratch repo."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from advinterp.store import open_store
from tests.conftest import first_seed, run

DVC = [sys.executable, "-m", "dvc"]


@pytest.mark.slow
def test_repro_explain_eval_end_to_end(pipeline_repo):
    out = run([*DVC, "repro", "explain_eval"], pipeline_repo)
    assert "Running stage 'explain_eval@0'" in out.stdout
    repo = pipeline_repo

    stats = json.loads((repo / first_seed("artifacts/localized_attack/metrics.json")).read_text())
    assert stats["attempts"] == stats["successes"] + stats["failed"] + stats["stalled"]
    assert stats["successes"] >= 1
    attacks = open_store(repo / first_seed("artifacts/localized_attack/attacks.zarr"))
    dataset = open_store(repo / "data/dataset.zarr")
    clean = dataset["images"].get_orthogonal_selection((attacks["rows"][:],))
    adv, region = attacks["images"][:], attacks["region"][:].astype(bool)
    outside = ~np.broadcast_to(region[:, None], adv.shape)
    assert np.array_equal(adv[outside], clean[outside])  # only the region was attacked
    assert (attacks["pred"][:] == attacks.attrs["target"]).all()
    attempts = pd.read_csv(repo / first_seed("artifacts/localized_attack/attempts.csv"))
    assert len(attempts) == stats["attempts"]

    ex = open_store(repo / first_seed("artifacts/explain/explanations.zarr"))
    loc = ex["localized"]
    assert np.array_equal(loc["region"][:], attacks["region"][:])  # ground truth kept
    assert loc["saliency"].shape == adv.shape and loc["lime_top"].shape[1] == 5
    assert ex.attrs["sets"] == ["localized", "ifgsm", "clean"]
    ifgsm_rows = ex["ifgsm"]["rows"][:]
    assert 1 <= len(ifgsm_rows) <= 2
    clean_rows = ex["clean"]["rows"][:]
    assert set(attacks["source_rows"][:]) | set(ifgsm_rows) == set(clean_rows)
    np.testing.assert_array_equal(clean_rows[ex["ifgsm"]["clean_index"][:]], ifgsm_rows)

    metrics = json.loads((repo / first_seed("artifacts/explain_eval/metrics.json")).read_text())
    ranks = [metrics["mean_rank"][k]["jaccard"] for k in ("saliency", "guided_backprop", "lime")]
    assert all(1.0 <= r <= 3.0 for r in ranks) and sum(ranks) == pytest.approx(6.0)
    assert set(metrics["explanation_overlap_with_clean"]) >= {"localized", "ifgsm"}
    curve = pd.read_csv(repo / first_seed("artifacts/explain_eval/jaccard.csv"))
    assert curve["n"].tolist() == [1, 2, 3, 4, 5]
    assert ((curve[["saliency", "lime", "random"]].dropna() >= 0).all()).all()
    for png in ("figure3_examples", "figure4_curves", "explanations_side_by_side"):
        assert (repo / first_seed(f"artifacts/explain_eval/{png}.png")).read_bytes()[
            :4
        ] == b"\x89PNG"
    assert not list(repo.glob("**/.*.tmp-*")), "temporary outputs left behind"

    again = run([*DVC, "repro", "explain_eval"], repo)
    assert "Running stage" not in again.stdout, again.stdout
