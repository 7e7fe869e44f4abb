"""TinyVGG: the second architecture of attack-to-explain."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advinterp.attacks.attack_to_explain import conv_base_activation
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.models.tiny_vgg import TinyVGG


def test_shapes_conv_base_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build_classifier("tiny_vgg", 5, (0.5,) * 3, (0.25,) * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    assert model.features(x).shape == (2, 128)
    # the convolutional base of Algorithm 2 is VGG's ``features``: 32 px / 2^4 = 2
    assert conv_base_activation(model, x).shape == (2, 128, 2, 2)
    path = tmp_path / "vgg.pt"
    save_classifier(path, model, note="test")
    loaded = load_classifier(path)
    assert loaded.arch == "tiny_vgg" and isinstance(loaded.body, TinyVGG)
    assert torch.allclose(loaded(x), model(x))
    assert not loaded.training


def test_seeded_weights_are_those_of_a_tinyvgg_built_for_the_class_count():
    # The backbone's own final Linear (replaced by the head) is built num_classes wide:
    # its size decides how far it advances the RNG before the convolutions are drawn.
    torch.manual_seed(3)
    model = build_classifier("tiny_vgg", 5, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(3)
    body = TinyVGG(5)
    head = nn.Linear(body.fc.in_features, 5)
    built = model.body.state_dict()
    for key, value in body.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(built[key], value), key
    assert torch.equal(model.head.weight, head.weight)
    assert torch.equal(model.head.bias, head.bias)


def test_loading_for_another_class_count_is_refused(tmp_path):
    path = tmp_path / "vgg.pt"
    save_classifier(path, build_classifier("tiny_vgg", 3, (0.5,) * 3, (0.25,) * 3))
    with pytest.raises(CheckpointError, match="3 classes"):
        load_classifier(path, num_classes=5)
