"""The lan_train run: g fitted on the train split, every row's mask written, its checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from advinterp.config.lan_train import LanTrainConfig
from advinterp.data.dataset import TEST
from advinterp.explainers.lan import attention_masks
from advinterp.explainers.lan_training import first_of_each_class, lan_training
from advinterp.store import create_group
from tests.attacks.lan_toy import toy_dataset
from tests.attacks.toy import standard_toy_model

CPU = torch.device("cpu")
CFG = LanTrainConfig.model_validate(
    {"hidden": [8, 16], "epochs": 2, "batch_size": 8, "figure_classes": 3, "figure": {"dpi": 40}}
)


def test_first_of_each_class_by_hand():
    labels = np.array([2, 0, 2, 1, 0, 3])
    assert first_of_each_class(labels, 10) == [1, 3, 0, 5]
    assert first_of_each_class(labels, 2) == [1, 3]
    assert first_of_each_class(np.array([3, 3]), 4) == [0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lan_train")
    images, index = toy_dataset(root / "d.zarr")
    group = create_group(root / "masks.zarr", {"params": {"note": 1}})
    f1 = standard_toy_model()  # first use trains it, drawing from the global RNG
    torch.manual_seed(0)  # g's initial weights
    result = lan_training(f1, images, index, CFG, group, seed=0, device=CPU)
    return images, index, group, result


def test_masks_of_every_row_are_gs_masks(trained):
    images, _, group, result = trained
    masks = np.asarray(group["masks"][:])
    assert masks.shape == images.shape and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    # Written shard by shard; recomputed here in one batch of 128. Equal up to float
    # rounding: batch shape (and torch's thread count, which other tests set) picks kernels.
    again = attention_masks(result.lan, images[:], 128, CPU)
    np.testing.assert_allclose(masks, again, rtol=0, atol=1e-6)
    assert group["masks"].attrs["index"] == "dataset row"
    assert group.attrs["params"] == {"note": 1}
    assert not result.lan.training


def test_metrics_follow_history_and_masks(trained):
    _, index, group, result = trained
    m, h = result.metrics, result.history
    assert [r["epoch"] for r in h] == [1, 2]
    assert m["objective_first_epoch"] == h[0]["objective"]
    assert m["objective_last_epoch"] == h[-1]["objective"]
    assert m["output_loss_last_epoch"] == h[-1]["output_loss"]
    assert m["mean_mask_train_last_epoch"] == h[-1]["mean_mask"]
    test_masks = np.asarray(group["masks"][:])[index.split == TEST]
    assert m["mean_mask_test"] == float(test_masks.mean())
    assert 0.0 <= m["f1_agreement_corrupted_test"] <= 1.0
    # Eq. 3's objective is the output term plus beta times the mean mask, per epoch.
    for r in h:
        assert r["objective"] == pytest.approx(r["output_loss"] + CFG.beta * r["mean_mask"])


def test_figure_shows_one_test_image_per_class(trained):
    result = trained[3]
    assert isinstance(result.figure, Figure)
    titled = [ax.get_title() for ax in result.figure.axes if ax.get_title()]
    assert titled == ["c0", "c1", "c2"]  # figure_classes = 3, image row only
    assert len(result.figure.axes) == 2 * CFG.figure_classes


def test_same_seed_same_masks(trained, tmp_path):
    images, index, group, _ = trained
    again = create_group(tmp_path / "masks.zarr")
    f1 = standard_toy_model()
    torch.manual_seed(0)
    lan_training(f1, images, index, CFG, again, seed=0, device=CPU)
    assert np.array_equal(again["masks"][:], group["masks"][:])
