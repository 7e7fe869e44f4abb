"""Classic saliency: relu(∂J/∂x) of the paper's J through captum; model left untouched."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
from torch import nn

from advinterp.config.explain import ExplainConfig
from advinterp.explainers.protocol import ExampleSlice
from advinterp.explainers.saliency import (
    SALIENCY_FORMS,
    SaliencyExplainer,
    objective_saliency,
    saliency,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# Two classes on (3, 1, 2) images, no bias: at x = 0 both logits are 0, p = (1/2, 1/2),
# so ∂ log p_0/∂x = W_0 - (W_0 + W_1)/2 = (W_0 - W_1)/2 by hand.
W = torch.tensor([[1.0, -2.0, 3.0, 0.0, -1.0, 2.0], [3.0, 0.0, 1.0, -2.0, -1.0, 0.0]])
HALF_DIFF = [-1.0, -1.0, 1.0, 1.0, 0.0, 1.0]  # (W_0 - W_1) / 2


def linear_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2, bias=False)).train()
    with torch.no_grad():
        model[1].weight.copy_(W)
    return model


def test_logit_gradient_is_the_signed_weight_row_and_state_is_restored():
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


@pytest.mark.parametrize(
    ("form", "want_0", "want_1"),
    [
        # J = log p(y|x): relu((W_y - W_other) / 2), what supports y.
        ("log_prob", [0, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 0]),
        # J = CE: the opposite sign's positive part, what speaks against y.
        ("loss", [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 1]),
        # J = f_y: relu(W_y), the logit form (the module's old map, clamped).
        ("logit", [1, 0, 3, 0, 0, 2], [3, 0, 1, 0, 0, 0]),
    ],
)
def test_map_is_the_clamped_gradient_of_the_forms_objective(form, want_0, want_1):
    model = linear_model()
    x = torch.zeros(2, 3, 1, 2)
    got = objective_saliency(model, x, torch.tensor([0, 1]), form)
    torch.testing.assert_close(got.reshape(2, 6), torch.tensor([want_0, want_1], dtype=torch.float))
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    assert not x.requires_grad and x.grad is None


def test_default_is_the_log_probability_not_the_logit_and_the_explainer_uses_it():
    model = linear_model()
    images = np.zeros((2, 3, 1, 2), np.float32)
    targets = np.array([0, 1])
    cpu = torch.device("cpu")
    got = SaliencyExplainer(1).explain(model, images, targets, device=cpu, where=ExampleSlice(0))
    want = np.clip(np.array([HALF_DIFF, [-v for v in HALF_DIFF]]), 0, None)
    np.testing.assert_allclose(got["saliency"].reshape(2, 6), want)
    logit = SaliencyExplainer(1, "logit").explain(
        model, images, targets, device=cpu, where=ExampleSlice(0)
    )
    assert not np.allclose(logit["saliency"], got["saliency"])


def test_gradient_is_per_sample_although_captum_sums_the_batch():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    x, t = torch.rand(4, 3, 4, 4), torch.tensor([0, 1, 2, 1])
    whole = objective_saliency(model, x, t, "loss")
    single = torch.cat(
        [objective_saliency(model, x[i : i + 1], t[i : i + 1], "loss") for i in range(4)]
    )
    torch.testing.assert_close(whole, single)


def test_config_offers_exactly_the_forms():
    assert get_args(ExplainConfig.model_fields["saliency"].annotation) == SALIENCY_FORMS
    assert ExplainConfig().saliency == "log_prob"
    with pytest.raises(ValueError, match="unknown saliency form"):
        objective_saliency(linear_model(), torch.zeros(1, 3, 1, 2), torch.tensor([0]), "grad")  # type: ignore[arg-type]
