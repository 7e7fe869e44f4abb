"""TinyVGG: the second architecture of attack-to-explain."""

from __future__ import annotations

import pytest
import torch

from advinterp.attacks.attack_to_explain import conv_base_activation
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.models.tiny_vgg import build_tiny_vgg, load_tiny_vgg


def test_shapes_conv_base_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build_tiny_vgg(5, (0.5,) * 3, (0.25,) * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    assert model.features(x).shape == (2, 128)
    # the convolutional base of Algorithm 2 is VGG's ``features``: 32 px / 2^4 = 2
    assert conv_base_activation(model, x).shape == (2, 128, 2, 2)
    path = tmp_path / "vgg.pt"
    save_classifier(path, model, note="test")
    loaded = load_tiny_vgg(path)
    assert torch.allclose(loaded(x), model(x))
    assert not loaded.training


def test_loading_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet.pt"
    save_classifier(path, build_classifier("tiny_resnet", 3, (0.5,) * 3, (0.25,) * 3))
    with pytest.raises(CheckpointError, match="tiny_vgg"):
        load_tiny_vgg(path)
