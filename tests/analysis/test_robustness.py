"""Robust accuracy under several attacks on the same images (Tables 2-3 machinery)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advinterp.analysis.robustness import attack_batches, predictions, robust_accuracies


class Threshold(nn.Module):
    """Class 1 when the image mean exceeds 0.5."""

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], 1)


def test_robust_accuracies_by_hand():
    x = torch.full((4, 3, 2, 2), 0.4)
    x[2:] = 0.6
    y = torch.tensor([0, 0, 1, 0])  # f predicts 0, 0, 1, 1: clean accuracy 3/4
    calls = []

    def darken(model, xb, yb):
        calls.append(len(xb))
        return xb - 0.3  # everything becomes class 0: accuracy 3/4 (labels 0,0,0)

    def identity(model, xb, yb):
        return xb

    model = Threshold().train()
    result = robust_accuracies(model, x, y, {"darken": darken, "none": identity}, batch_size=3)
    assert result == pytest.approx({"clean": 0.75, "darken": 0.75, "none": 0.75})
    assert calls == [3, 1]  # batched
    assert model.training  # mode restored by predictions()
    torch.testing.assert_close(predictions(model, x - 0.3), torch.zeros(4, dtype=torch.long))


def test_attack_batches_keeps_order():
    x = torch.arange(5.0).view(5, 1, 1, 1)

    def plus_one(model, xb, yb):
        return xb + 1

    out = attack_batches(plus_one, Threshold(), x, torch.zeros(5), batch_size=2)
    torch.testing.assert_close(out, x + 1)


def test_no_images_refused():
    with pytest.raises(ValueError):
        robust_accuracies(Threshold(), torch.zeros(0, 3, 2, 2), torch.zeros(0), {})


def test_predictions_equal_the_per_batch_argmax_and_stay_on_x_device():
    """predictions delegates to models.predict: same classes as an eval-mode argmax of
    every batch (the loop it replaced), returned on x's device, mode restored."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6), nn.Linear(6, 4))
    model.train()
    x = torch.rand(9, 3, 2, 2)
    got = predictions(model, x, batch_size=4)
    assert model.training
    model.eval()
    with torch.no_grad():
        want = torch.cat([model(x[s : s + 4]).argmax(1) for s in range(0, 9, 4)])
    assert got.dtype == torch.long and got.device == x.device
    assert torch.equal(got, want)
    assert predictions(model, x[:0]).shape == (0,)
