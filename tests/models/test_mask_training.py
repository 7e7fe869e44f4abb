"""train_mask_classifier: f2 fitted on masks of the train split, scored on val and test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.config.mask_classifier import MaskClassifierConfig
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, VAL
from advinterp.models.mask_classifier import MaskClassifier
from advinterp.models.mask_training import train_mask_classifier
from advinterp.models.training import accuracy
from advinterp.store import create_group, write_array
from tests.data.indexes import toy_index
from tests.models.test_mask_classifier import blob_masks
from tests.models.toy_fit import former_fit_split

CPU = torch.device("cpu")
CFG = MaskClassifierConfig.model_validate({"epochs": 3, "batch_size": 16})


def mask_store(tmp_path, split):
    """Blob masks of len(split) rows in zarr (shards of 8) and their index."""
    x, y = blob_masks(len(split), 4, seed=0)
    masks = write_array(
        create_group(tmp_path / "masks.zarr"),
        "masks",
        x,
        dims=("sample", "channel", "y", "x"),
        chunk_size=8,
    )
    index = toy_index(y, split, list("abcd"), name="blobs")
    return masks, index


def test_equals_the_former_inline_training(tmp_path):
    """Bitwise the stage's former code (fit with a seeded shuffle, no augmentation)."""
    masks, index = mask_store(tmp_path, np.repeat([0, 1, 2], [40, 8, 16]))
    torch.manual_seed(5)
    ours = train_mask_classifier(masks, index, CFG, seed=9, device=CPU)

    torch.manual_seed(5)
    data = SplitBatches(masks, index.labels, index.split, CFG.batch_size, 8)
    ref = MaskClassifier(4, 3, CFG.dropout)
    history = former_fit_split(ref, data, CFG, seed=9, augment=False)
    assert ours.history == history
    for a, b in zip(ours.model.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert ours.metrics == {
        "train_accuracy": history[-1]["train_accuracy"],
        "val_accuracy": history[-1]["val_accuracy"],
        "test_accuracy": accuracy(ref, data.ordered(TEST), CPU),
        "chance": 0.25,
    }
    assert ours.metrics["val_accuracy"] == accuracy(ref, data.ordered(VAL), CPU)


def test_no_val_split_reports_none_and_learns(tmp_path):
    masks, index = mask_store(tmp_path, np.repeat([0, 2], [64, 32]))
    torch.manual_seed(0)
    cfg = CFG.model_copy(update={"epochs": 8})
    result = train_mask_classifier(masks, index, cfg, seed=0, device=CPU)
    assert result.metrics["val_accuracy"] is None
    assert result.metrics["test_accuracy"] == pytest.approx(
        accuracy(result.model, [(masks[64:], index.labels[64:])], CPU)
    )
    assert result.metrics["test_accuracy"] > 0.5  # class-dependent blobs, chance 0.25
    assert not result.model.training
