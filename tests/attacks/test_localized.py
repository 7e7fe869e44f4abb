"""Localized BIM: nothing outside the region changes; the target is reached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.attacks.localized import (
    FAILED,
    STALLED,
    SUCCESS,
    largest_regions,
    localized_bim,
    segment_regions,
)
from tests.explainers.models import synthetic_images, warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(synthetic_images(range(4)))


def _regions(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xs, masks = [], []
    for im in images.numpy():
        for mask in largest_regions(segment_regions(im, 100, 1.0, 10), 2, max_fraction=0.5):
            xs.append(im)
            masks.append(mask)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(masks))


def test_outside_pixels_untouched_and_target_reached(images):
    model = warmed_tiny_resnet()
    x, masks = _regions(images)
    clean_pred = model(x).argmax(1)
    targets = (clean_pred + 1) % 4
    result = localized_bim(
        model, x, masks, targets, eps=0.5, step_size=0.05, max_steps=60, patience=15
    )
    outside = ~masks[:, None].expand_as(x)
    assert torch.equal(result.adversarial[outside], x[outside])  # bit-identical
    assert (result.adversarial - x).abs().amax() <= 0.5 + 1e-6
    assert result.adversarial.min() >= 0.0 and result.adversarial.max() <= 1.0
    ok = result.outcome == SUCCESS
    assert ok.float().mean() >= 0.75, result.outcome
    assert torch.equal(result.pred[ok], targets[ok])
    assert torch.equal(model(result.adversarial).argmax(1)[ok], targets[ok])
    assert (result.steps[ok] >= 1).all()  # clean images were not already the target


def test_already_at_target_stops_at_step_zero_and_zero_budget_fails(images):
    model = warmed_tiny_resnet()
    x, masks = _regions(images[:1])
    pred = model(x).argmax(1)
    done = localized_bim(model, x, masks, pred, eps=0.1, step_size=0.01, max_steps=5, patience=3)
    assert (done.outcome == SUCCESS).all() and (done.steps == 0).all()
    assert torch.equal(done.adversarial, x)
    none = localized_bim(
        model, x, masks, (pred + 1) % 4, eps=0.0, step_size=0.01, max_steps=50, patience=5
    )
    # eps = 0 cannot move: the loss never improves, so the attempt is given up as stalled.
    assert (none.outcome == STALLED).all() and (none.steps == 5).all()
    capped = localized_bim(
        model, x, masks, (pred + 1) % 4, eps=0.0, step_size=0.01, max_steps=3, patience=10
    )
    assert (capped.outcome == FAILED).all()


def test_model_state_restored(images):
    model = warmed_tiny_resnet().train()
    x, masks = _regions(images[:1])
    localized_bim(
        model,
        x,
        masks,
        torch.zeros(len(x), dtype=torch.long),
        eps=0.1,
        step_size=0.01,
        max_steps=3,
        patience=3,
    )
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_largest_regions_order_and_size_cap():
    seg = np.zeros((10, 10), dtype=np.int64)
    seg[:, 6:] = 1  # 40 px
    seg[:3, :3] = 2  # 9 px
    seg[9, :2] = 3  # 2 px; region 0 keeps 100-40-9-2 = 49 px
    masks = largest_regions(seg, 3, max_fraction=0.45)
    assert [int(m.sum()) for m in masks] == [40, 9, 2]
    assert masks[0][:, 6:].all()
    assert len(largest_regions(seg, 10)) == 4


def test_segment_regions_labels_every_pixel(images):
    seg = segment_regions(images[0].numpy(), 100, 1.0, 10)
    assert seg.shape == (32, 32) and seg.min() == 0
    assert set(np.unique(seg)) == set(range(seg.max() + 1))
