"""Classifier wrapper, builders and safe checkpoints."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torchvision

from advinterp.errors import CheckpointError, ParamError
from advinterp.models.checkpoint import load_classifier, load_pretrained, save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.models.features import features_and_logits

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def test_normalisation_lives_inside_and_head_splits_features():
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 5, MEAN, STD).eval()
    x = torch.rand(3, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (3, 128)
    torch.testing.assert_close(model(x), model.head(feats))
    # Same body on manually normalised input gives the same features.
    normed = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.body(normed).flatten(1), feats)


def test_torchvision_names_build_without_downloading():
    model = build_classifier("resnet18", 7, MEAN, STD)
    assert model.num_classes == 7 and model.feature_dim == 512
    with pytest.raises(ParamError, match="unknown model 'resnet9000'"):
        build_classifier("resnet9000", 7, MEAN, STD)


def test_features_are_batch_size_invariant():
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 4, MEAN, STD)
    images = np.random.default_rng(0).random((10, 3, 32, 32), dtype=np.float32)
    f1, z1 = features_and_logits(model, images, 3, torch.device("cpu"))
    f2, z2 = features_and_logits(model, images, 10, torch.device("cpu"))
    np.testing.assert_allclose(f1, f2, atol=1e-5)
    np.testing.assert_allclose(z1, z2, atol=1e-5)
    assert model.training, "features_and_logits must restore train mode"


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 4, MEAN, STD).eval()
    save_classifier(tmp_path / "m.pt", model, note="x")
    loaded = load_classifier(tmp_path / "m.pt")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.mean.flatten().tolist() == pytest.approx(MEAN)


class _Payload:
    def __reduce__(self):  # would run a shell command if unpickled without weights_only
        return (print, ("pwned",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_classifier(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_pretrained(build_classifier("tiny_resnet", 4, MEAN, STD), path)


def test_missing_and_corrupt_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "absent.pt")
    bad = tmp_path / "truncated.pt"
    model = build_classifier("tiny_resnet", 4, MEAN, STD)
    save_classifier(bad, model)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_classifier(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_classifier(junk)


def test_pretrained_torchvision_state_dict_fine_tune_start(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.resnet18(num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    model = build_classifier("resnet18", 10, MEAN, STD)
    fresh = load_pretrained(model, tmp_path / "r18.pth")
    assert fresh == ["head.weight", "head.bias"]
    torch.testing.assert_close(model.body.conv1.weight, source.conv1.weight)


def test_pretrained_wrong_architecture_is_named(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="wrong architecture"):
        load_pretrained(build_classifier("resnet34", 10, MEAN, STD), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match="wrong architecture"):
        load_pretrained(build_classifier("tiny_resnet", 10, MEAN, STD), tmp_path / "r18.pth")
