"""The second architecture of attack-to-explain's cross-model check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from advinterp.config.a2e_second import A2ESecondConfig
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.models.classifier import build_classifier
from advinterp.models.predict import predict
from advinterp.models.second_classifier import train_second_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data():
    g = np.random.default_rng(0)
    labels = np.arange(24) % 4
    split = np.array([TRAIN] * 16 + [VAL] * 4 + [TEST] * 4, dtype=np.int8)
    x = g.random((24, 3, 16, 16), dtype=np.float32) * 0.5
    x[:, labels % 3] += 0.4  # a colour cue per class (classes 0 and 3 share red)
    images = zarr.array(np.clip(x, 0, 1), chunks=(8, 3, 16, 16))
    return images, labels, split


def _train(data, seed: int = 0):
    images, labels, split = data
    torch.manual_seed(seed)  # what the stage runner does before main
    standard = build_classifier("tiny_resnet", 4, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    cfg = A2ESecondConfig(arch="tiny_vgg", epochs=2, batch_size=8)
    return standard, *train_second_classifier(
        cfg, images, labels, split, standard, torch.device("cpu"), seed
    )


def test_trained_with_the_standard_models_normalisation(data):
    standard, model, scores = _train(data)
    assert model.arch == "tiny_vgg" and model.num_classes == 4 and not model.training
    assert torch.equal(model.mean, standard.mean) and torch.equal(model.std, standard.std)
    assert set(scores) == {"train_accuracy", "val_accuracy", "test_accuracy"}


def test_test_accuracy_is_top1_on_the_test_split(data):
    images, labels, split = data
    _, model, scores = _train(data)
    rows = np.flatnonzero(split == TEST)
    pred = predict(model, torch.as_tensor(images[:][rows]), batch_size=8)
    assert scores["test_accuracy"] == pytest.approx(float((pred.numpy() == labels[rows]).mean()))


def test_same_seed_same_weights_other_seed_other_weights(data):
    _, a, _ = _train(data, seed=0)
    _, b, _ = _train(data, seed=0)
    _, c, _ = _train(data, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
