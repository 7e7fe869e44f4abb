"""Attribute chain I through a real ``dvc repro accuracy`` in a scratch repository."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from advinterp.analysis.accuracy_curves import CURVE_COLUMNS, TABLE_COLUMNS
from advinterp.data.adversarial import ChainLayout
from advinterp.store import open_store, read_array
from tests.conftest import first_seed, ran_stages, run, stage_names

DVC = [sys.executable, "-m", "dvc"]
CHAIN = {"adv_train", "attack", "adv_features", "sje", "accuracy"}


def _ran(output: str) -> set[str]:
    return stage_names(ran_stages(output))


@pytest.mark.slow
def test_repro_accuracy_then_eps_grid_change_reruns_only_downstream_of_attack(pipeline_repo):
    repo = pipeline_repo
    first = run([*DVC, "repro", "accuracy"], repo)
    assert CHAIN | {"validate", "dataset", "train"} <= _ran(first.stdout), first.stdout

    attack = open_store(repo / "artifacts/attack/adversarial.zarr", {"rows": 1, "targets": 1})
    layout = ChainLayout.from_attrs(attack.attrs, "attack")
    assert layout.model_keys == ["standard", "at_0.06"]
    dataset = open_store(repo / "data/dataset.zarr", {"images": 4})
    rows = attack["rows"][:]
    clean = dataset["images"].oindex[rows]
    assert (attack["targets"][:] != attack["labels"][:]).all()
    np.testing.assert_array_equal(read_array(attack, "clean"), clean)
    for _, _, eps, path in layout.adversarial_sets():
        adv = read_array(attack, f"{path}/images")  # stored relative to attack["clean"]
        assert adv.dtype == np.float32 and adv.shape == clean.shape
        assert np.abs(adv - clean).max() <= eps + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0

    feats = open_store(repo / "artifacts/adv_features/features.zarr")
    sje = open_store(repo / first_seed("artifacts/sje/sje.zarr"), {"class_embeddings": 2})
    n_all, A = dataset["images"].shape[0], sje["class_embeddings"].shape[1]
    assert feats["at_0.06/clean/features"].shape == (n_all, 128)
    assert sje["standard/W"].shape == (128, A)
    assert sje["at_0.06/targeted/eps_0.12/attributes"].shape == (len(rows), A)

    table = pd.read_csv(repo / first_seed("artifacts/accuracy/accuracy.csv"))
    assert tuple(table.columns) == TABLE_COLUMNS
    assert len(table) == 2 * 2 * (2 + 3 * 2)  # models x modes x (clean + eps x classifiers)
    curves = pd.read_csv(repo / first_seed("artifacts/accuracy/curves/curves_targeted.csv"))
    assert tuple(curves.columns) == CURVE_COLUMNS and curves["eps"].tolist() == [0.01, 0.06, 0.12]
    assert (repo / first_seed("artifacts/accuracy/figure4.png")).stat().st_size > 1000
    metrics = json.loads((repo / first_seed("artifacts/accuracy/metrics.json")).read_text())
    assert set(metrics["untargeted"]) == {"eps_0.01", "eps_0.06", "eps_0.12"}
    assert not list(repo.glob("artifacts/**/.*.tmp-*")), "temporary outputs left behind"

    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["attack"]["eps"] = [0.01, 0.03, 0.06, 0.12]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    second = run([*DVC, "repro", "accuracy"], repo)
    # validate checks the eps grid too (its facts are unchanged, so the dataset is not rebuilt)
    expected = {"validate", "attack", "adv_features", "sje", "accuracy"}
    assert _ran(second.stdout) == expected, second.stdout
    curves = pd.read_csv(repo / first_seed("artifacts/accuracy/curves/curves_untargeted.csv"))
    assert curves["eps"].tolist() == [0.01, 0.03, 0.06, 0.12]

    # One more adversarial-training eps: only its own run trains (adv_train@0.06 is
    # current), then the attack and what reads it rerun for the new model.
    params["adv_train"]["eps"] = [0.06, 0.1]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    third = run([*DVC, "repro", "accuracy"], repo)
    runs = ran_stages(third.stdout)
    assert {r for r in runs if r.startswith("adv_train")} == {"adv_train@0.1"}, third.stdout
    assert stage_names(runs) == expected | {"adv_train"}, third.stdout
    attack = open_store(repo / "artifacts/attack/adversarial.zarr", {"rows": 1})
    assert ChainLayout.from_attrs(attack.attrs, "attack").model_keys == [
        "standard",
        "at_0.06",
        "at_0.1",
    ]

    # Removing it again: no model trains; the attack and the features rerun (the list
    # changed; the removed model's file stays in the directory they depend on), the
    # attack for the listed models only, and sje comes back from DVC's run cache as it
    # was after the second run (accuracy reruns: DVC's run cache skips stages with
    # outputs kept in git, as its metrics are).
    params["adv_train"]["eps"] = [0.06]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    fourth = run([*DVC, "repro", "accuracy"], repo)
    assert (repo / "artifacts/adv_train/models/at_0.1.pt").is_file()
    assert _ran(fourth.stdout) == {"validate", "attack", "adv_features", "accuracy"}, fourth.stdout
    assert "Stage 'sje@0' is cached - skipping run" in fourth.stdout, fourth.stdout
    attack = open_store(repo / "artifacts/attack/adversarial.zarr", {"rows": 1})
    assert ChainLayout.from_attrs(attack.attrs, "attack").model_keys == ["standard", "at_0.06"]
