"""Saliency / integrated gradients / occlusion maps beside InterpretGAN (Figs. 3, 5)."""

from __future__ import annotations

import torch

from advinterp.explainers.captum_baselines import BASELINES, baseline_maps
from advinterp.models.pooling_cnn import build_pooling_cnn


def test_maps_shapes_signs_and_model_restored():
    torch.manual_seed(0)
    model = build_pooling_cnn(
        "max", 3, (0.5,) * 3, (0.25,) * 3, widths=(2, 3), fc_width=4, input_size=8
    )
    model.train()
    x = torch.rand(2, 3, 16, 16)
    maps = baseline_maps(
        model, x, torch.tensor([0, 2]), ig_steps=4, occlusion_window=4, occlusion_stride=4
    )
    assert list(maps) == list(BASELINES)
    for m in maps.values():
        assert m.shape == (2, 16, 16) and torch.isfinite(m).all()
    assert (maps["saliency"] >= 0).all() and (maps["integrated_gradients"] >= 0).all()
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_occlusion_is_the_score_drop_of_a_grey_square():
    class RedTopLeft(torch.nn.Module):  # logit 0 = mean red of the top-left 4x4 block
        def forward(self, x):
            v = x[:, 0, :4, :4].mean((1, 2))
            return torch.stack([v, -v], 1)

    x = torch.ones(1, 3, 8, 8)
    occ = baseline_maps(
        RedTopLeft(), x, torch.tensor([0]), ig_steps=2, occlusion_window=4, occlusion_stride=4
    )["occlusion"][0]
    # Greying the top-left block drops the score by 1 - 0.5; captum gives that drop to
    # every element of the (3, 4, 4) window, and the map sums the 3 channels.
    torch.testing.assert_close(occ[:4, :4], torch.full((4, 4), 1.5))
    torch.testing.assert_close(occ[4:, :], torch.zeros(4, 8))
    torch.testing.assert_close(occ[:4, 4:], torch.zeros(4, 4))
