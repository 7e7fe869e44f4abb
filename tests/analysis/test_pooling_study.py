"""Tables 2-3: the pooling twin, the attacks, and max vs avg accuracy on the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.analysis.pooling_study import (
    OTHER,
    compare_pooling,
    study_attacks,
    train_twin,
)
from advinterp.analysis.robustness import robust_accuracies
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.pgd import pgd
from advinterp.config.igan_train import IganTrainConfig
from advinterp.config.pooling_study import PoolingStudyConfig
from advinterp.data.dataset import TEST, TRAIN, VAL, AttributeIndex
from advinterp.errors import CheckpointError
from advinterp.models.pooling_cnn import architecture_of, build_pooling_cnn, train_classifier
from tests.data.indexes import toy_index

pytestmark = pytest.mark.usefixtures("one_thread_per_module")
CPU = torch.device("cpu")
CFG = PoolingStudyConfig(eps=0.1, pgd_steps=(1, 3), mpgd_steps=2, max_images=None, batch_size=4)
RECIPE = IganTrainConfig.model_validate(
    {
        "classifier": {"widths": [2, 3], "fc_width": 4, "input_size": 8, "epochs": 1,
                       "batch_size": 6},
        "adversarial": {"steps": 1},
    }
)  # fmt: skip


def _model(pooling: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_pooling_cnn(
        pooling, 3, (0.5,) * 3, (0.3,) * 3, widths=(2, 3), fc_width=4, input_size=8
    ).eval()


def _xy():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    return x, torch.tensor([0, 1, 2, 0, 1, 2])


def test_study_attacks_are_freshly_seeded_pgd_mpgd_and_fgsm():
    attacks = study_attacks(CFG, seed=7)
    assert list(attacks) == ["pgd1", "pgd3", "mpgd2", "fgsm"]
    model, (x, y) = _model("max"), _xy()
    want = pgd(model, x, y, eps=0.1, steps=3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(attacks["pgd3"](model, x, y), want, rtol=0, atol=0)
    torch.testing.assert_close(attacks["fgsm"](model, x, y), fgsm(model, x, y, eps=0.1))
    for name in ("pgd1", "mpgd2"):
        assert float((attacks[name](model, x, y) - x).abs().max()) <= 0.1 + 1e-6


def test_compare_pooling_against_robust_accuracies():
    avg, mx = _model("avg", 1), _model("max", 2)
    x, y = _xy()
    study = compare_pooling({"avg": avg, "max": mx}, x, y, CFG, 5, twin_val_accuracy=0.5)
    want = {k: robust_accuracies(m, x, y, study_attacks(CFG, 5), 4) for k, m in ((0, mx), (1, avg))}
    m = study.metrics
    assert m["max"] == want[0] and m["avg"] == want[1]
    assert (m["images"], m["eps"], m["twin_val_accuracy"]) == (6, 0.1, 0.5)
    assert m["avg_minus_max"] == {k: want[1][k] - want[0][k] for k in want[0]}
    assert study.table["pooling"].tolist() == ["max", "avg"]  # max first, whatever the order
    assert list(study.table.columns) == ["pooling", "clean", "pgd1", "pgd3", "mpgd2", "fgsm"]
    assert study.table.iloc[1, 1:].tolist() == list(want[1].values())


def _index(n: int) -> AttributeIndex:
    split = [TRAIN] * 12 + [VAL] * 3 + [TEST] * (n - 15)
    return toy_index(np.arange(n) % 3, split, ["a", "b", "c"], attribute="z")


def test_twin_has_the_other_pooling_and_the_recipe():
    images = np.random.default_rng(0).uniform(0, 1, (18, 3, 16, 16)).astype(np.float32)
    index = _index(18)
    robust = _model("max")
    twin, hist = train_twin(
        robust, RECIPE, images, index, chunk_size=6, seed=4, device=CPU, origin="r.pt"
    )
    assert architecture_of(twin)["pooling"] == OTHER["max"] == "avg"
    want, want_hist = train_classifier(
        RECIPE,
        "avg",
        {"widths": [2, 3], "fc_width": 4, "input_size": 8, "batch_norm": True},
        images,
        index.labels,
        index.split,
        3,
        mean=[0.5] * 3,
        std=[0.3] * 3,
        chunk_size=6,
        robust=True,
        seed=4,
        device=CPU,
    )
    assert hist == want_hist
    for v, w in zip(twin.state_dict().values(), want.state_dict().values(), strict=True):
        assert torch.equal(v, w)
    torch.testing.assert_close(twin.mean, robust.mean)


def test_twin_refuses_a_model_not_built_by_the_recipe():
    other = build_pooling_cnn("max", 3, (0.5,) * 3, (0.3,) * 3, widths=(2, 5), fc_width=4)
    images = np.zeros((18, 3, 16, 16), np.float32)
    with pytest.raises(CheckpointError, match="r.pt: architecture"):
        train_twin(
            other, RECIPE, images, _index(18), chunk_size=6, seed=0, device=CPU, origin="r.pt"
        )
