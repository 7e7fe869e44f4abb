"""Classic saliency through captum: the signed input gradient; model left untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advinterp.explainers.saliency import saliency

pytestmark = pytest.mark.usefixtures("one_thread")


def test_linear_model_gradient_is_the_weight_row_and_state_is_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 3)).train()
    x = torch.rand(2, 3, 2, 2)
    attr = saliency(model, x, torch.tensor([2, 0]))
    w = model[1].weight.detach()
    torch.testing.assert_close(attr[0], w[2].view(3, 2, 2))  # signed, not abs
    torch.testing.assert_close(attr[1], w[0].view(3, 2, 2))
    assert (attr < 0).any()
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    assert not x.requires_grad and x.grad is None
