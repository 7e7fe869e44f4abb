"""f2, the LeNet-style mask classifier: shapes, learning above chance, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.models.mask_classifier import (
    MaskClassifier,
    load_mask_classifier,
    mask_classifier_from_state,
    mask_classifier_state,
    predict_proba,
)
from advinterp.models.training import accuracy, make_optimizer
from tests.models.loader_checks import check_loader
from tests.models.toy_fit import fit_in_memory, numpy_order

CPU = torch.device("cpu")


def blob_masks(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks whose bright blob sits in a class-specific quadrant, jittered, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    m = rng.uniform(0, 0.2, (n, 3, 24, 24)).astype(np.float32)
    for i, c in enumerate(y):
        r0, c0 = 2 + 12 * (c // 2) + rng.integers(0, 3), 2 + 12 * (c % 2) + rng.integers(0, 3)
        m[i, :, r0 : r0 + 7, c0 : c0 + 7] = rng.uniform(0.7, 1.0)
    return m, y.astype(np.int64)


@pytest.mark.parametrize("size", [16, 24, 64])
def test_logit_shape_for_any_image_size(size):
    model = MaskClassifier(num_classes=7)
    assert model(torch.rand(2, 3, size, size)).shape == (2, 7)


def test_trains_well_above_chance_on_class_dependent_masks():
    torch.manual_seed(0)
    x, y = blob_masks(96, 4, seed=0)
    xt, yt = blob_masks(80, 4, seed=1)
    model = MaskClassifier(4)
    chance = 0.25
    before = accuracy(model, [(xt, yt)], CPU)
    fit_in_memory(
        model,
        x,
        y,
        [(xt, yt)],
        numpy_order(len(y)),
        epochs=10,
        optimizer=make_optimizer(model, "adam", 3e-3, 0.9, 0.0),
        augment=False,
    )
    after = accuracy(model, [(xt, yt)], CPU)
    assert after >= 0.9 and after > chance + 0.5, (before, after)


def test_checkpoint_roundtrip_and_probabilities():
    torch.manual_seed(0)
    model = MaskClassifier(5, dropout=0.1)
    back = mask_classifier_from_state(mask_classifier_state(model, note=1))
    x = torch.rand(4, 3, 20, 20)
    model.eval()
    assert torch.equal(model(x), back(x))
    p = predict_proba(back, x.numpy(), batch_size=3, device=CPU)
    assert p.shape == (4, 5)
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="not a mask-classifier"):
        mask_classifier_from_state({"format": "nope"})


def test_load_mask_classifier_roundtrip_and_refusals(tmp_path):
    torch.manual_seed(0)
    model = MaskClassifier(3).eval()
    check_loader(
        load_mask_classifier,
        model,
        mask_classifier_state(model),
        (3, 16, 16),
        tmp_path,
        foreign_format="advinterp-lan/1",
        kind="mask-classifier",
    )
