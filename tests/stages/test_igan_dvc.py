"""InterpretGAN stages end to end: ``dvc repro`` of igan_* and pooling_study on tiny params."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest

from advinterp.store import open_store
from tests.conftest import run

DVC = [sys.executable, "-m", "dvc"]
LAYERS = ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_interpretgan_stages(pipeline_repo):
    repo = pipeline_repo
    first = run([*DVC, "repro", "igan_explain", "igan_vulnerability", "pooling_study"], repo)
    assert {"dataset", "igan_train", "igan_explain", "igan_vulnerability", "pooling_study"} <= (
        _ran(first.stdout)
    )
    assert "train" not in _ran(first.stdout)  # independent of the ResNet pipeline

    models = repo / "artifacts/igan_train/models"
    assert sorted(p.name for p in models.iterdir()) == [
        "natural.pt",
        "natural_gans.pt",
        "robust.pt",
        "robust_gans.pt",
    ]
    train = json.loads((repo / "artifacts/igan_train/metrics.json").read_text())
    assert set(train["natural"]["gan"]) == set(LAYERS)

    vul = json.loads((repo / "artifacts/igan_vulnerability/metrics.json").read_text())
    for kind in ("natural", "robust"):
        layers = vul[kind]["layers"]
        assert list(layers) == LAYERS
        assert vul[kind]["vul_sum"] == pytest.approx(1 - layers["fc3"]["acc"])  # Eq. 5
        assert set(vul[kind]["pool_argmax_change"]) == {"conv2", "conv4"}
        assert all(0 <= v <= 1 for v in vul[kind]["pool_argmax_change"].values())
    table = pd.read_csv(repo / "artifacts/igan_vulnerability/table.csv")
    assert list(table["layer"]) == LAYERS
    assert (repo / "artifacts/igan_vulnerability/vulnerability.png").stat().st_size > 0

    expl = open_store(repo / "artifacts/igan_explain/explanations.zarr", {"images": 4})
    e = expl["natural/explanations"]
    assert 1 <= e.shape[0] <= 2  # correctly classified examples of distinct classes
    assert e.shape[1:] == (2, len(LAYERS), 3, 32, 32)  # input, layer, C, H, W
    values = e[:]
    assert values.min() >= 0.0 and values.max() <= 1.0
    for kind in ("natural", "robust"):
        assert (repo / f"artifacts/igan_explain/{kind}.png").stat().st_size > 0

    pool = json.loads((repo / "artifacts/pooling_study/metrics.json").read_text())
    for kind in ("max", "avg"):
        assert set(pool[kind]) == {"clean", "pgd1", "pgd2", "mpgd1", "fgsm"}
        assert all(0 <= v <= 1 for v in pool[kind].values())
    assert (repo / "artifacts/pooling_study/twin.pt").is_file()
    assert not list(repo.glob("**/.*.tmp-*")), "temporary outputs left behind"

    again = run([*DVC, "repro", "igan_explain", "igan_vulnerability", "pooling_study"], repo)
    assert _ran(again.stdout) == set(), again.stdout
