"""The paper's pooling CNN: the max/avg variants, per-layer outputs, checkpoints, twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advinterp.config.igan_train import IganTrainConfig
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import read_weights_file, save_classifier
from advinterp.models.pooling_cnn import (
    LAYERS,
    POOLED,
    architecture_of,
    build_pooling_cnn,
    channel_stats,
    layer_outputs,
    pool_inputs,
    pooling_cnn_from_checkpoint,
    recipe_architecture,
    train_classifier,
    train_pooling_cnn,
)

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _model(pooling: str, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return build_pooling_cnn(pooling, 5, MEAN, STD, input_size=16, **kw).eval()


def test_max_and_avg_variants_differ_only_in_pooling():
    a, b = _model("max"), _model("avg")
    mods_a, mods_b = dict(a.named_modules()), dict(b.named_modules())
    assert list(mods_a) == list(mods_b)
    differing = {n for n in mods_a if type(mods_a[n]) is not type(mods_b[n])}
    assert differing == {"body.stages.conv2.3", "body.stages.conv4.3"}
    for name in differing:
        assert isinstance(mods_a[name], nn.MaxPool2d) and isinstance(mods_b[name], nn.AvgPool2d)
        assert (mods_a[name].kernel_size, mods_a[name].stride) == (
            mods_b[name].kernel_size,
            mods_b[name].stride,
        )
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:  # same seed: same initial weights, buffers and normalisation
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    x = torch.rand(2, 3, 32, 32)
    assert not torch.allclose(a(x), b(x))  # and the pooling does change the function


def test_layer_outputs_shapes_and_consistency_with_forward():
    model = _model("max", widths=(4, 6), fc_width=10)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = layer_outputs(model, x)
        logits = model(x)
        pre = pool_inputs(model, x)
    assert list(out) == list(LAYERS)
    assert out["conv1"].shape == (3, 4, 16, 16)  # 32 px averaged down to input_size 16
    assert out["conv2"].shape == (3, 4, 8, 8)
    assert out["conv3"].shape == (3, 6, 8, 8)
    assert out["conv4"].shape == (3, 6, 4, 4)
    assert out["fc1"].shape == out["fc2"].shape == (3, 10)
    torch.testing.assert_close(out["fc3"], logits)
    torch.testing.assert_close(out["fc2"], model.features(x))
    for name in POOLED:
        torch.testing.assert_close(F.max_pool2d(pre[name], 2, 2), out[name])
    with torch.no_grad():
        assert list(layer_outputs(model, x, upto="conv3")) == ["conv1", "conv2", "conv3"]
    with pytest.raises(ValueError, match="unknown layer"):
        layer_outputs(model, x, upto="conv9")


def test_checkpoint_round_trip_and_wrong_checkpoints(tmp_path):
    model = _model("avg", widths=(3, 5), fc_width=7, batch_norm=False)
    save_classifier(tmp_path / "m.pt", model, architecture=architecture_of(model))
    obj = read_weights_file(tmp_path / "m.pt")
    back = pooling_cnn_from_checkpoint(obj, "m.pt")
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))
    assert architecture_of(back) == architecture_of(model)

    no_arch = dict(obj, metadata={})
    with pytest.raises(CheckpointError, match="does not record its architecture"):
        pooling_cnn_from_checkpoint(no_arch, "m.pt")
    bad = dict(obj, metadata={"architecture": {**architecture_of(model), "fc_width": 9}})
    with pytest.raises(CheckpointError, match="m.pt"):
        pooling_cnn_from_checkpoint(bad, "m.pt")
    with pytest.raises(CheckpointError, match="not a pooling_cnn"):
        pooling_cnn_from_checkpoint(dict(obj, arch="tiny_resnet"), "m.pt")


def test_channel_stats_by_hand():
    images = np.zeros((4, 3, 2, 2), np.float32)
    images[:, 0] = 1.0
    images[:2, 1] = 0.2
    images[2:, 1] = 0.6
    mean, std = channel_stats(images, np.array([0, 1, 2, 3]), chunk_size=2)
    np.testing.assert_allclose(mean, [1.0, 0.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(std, [1e-3, 0.2, 1e-3], atol=1e-6)  # floored at 1e-3


def test_twins_start_from_the_same_weights_and_train_deterministically():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (24, 3, 16, 16)).astype(np.float32)
    labels = np.arange(24) % 3
    kw = dict(
        mean=MEAN,
        std=STD,
        epochs=1,
        batch_size=8,
        lr=0.05,
        momentum=0.9,
        weight_decay=0.0,
        augment=True,
        chunk_size=8,
        seed=3,
        device=torch.device("cpu"),
        adversarial={"eps": 0.03, "alpha": 0.5, "steps": 1, "step_size": None},
    )
    arch = {"widths": (3, 4), "fc_width": 6, "input_size": 8, "batch_norm": True}
    rows, val = np.arange(16), np.arange(16, 24)
    one, hist = train_pooling_cnn("max", 3, arch, images, labels, rows, val, **kw)
    two, _ = train_pooling_cnn("max", 3, arch, images, labels, rows, val, **kw)
    for (k, v1), v2 in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        torch.testing.assert_close(v1, v2, rtol=0, atol=0, msg=k)
    assert len(hist) == 1 and not one.training
    assert architecture_of(one)["pooling"] == "max"


def test_recipe_architecture_matches_what_the_model_reports():
    cfg = IganTrainConfig.model_validate(
        {"classifier": {"pooling": "avg", "widths": [3, 4], "fc_width": 6, "input_size": 8}}
    )
    arch = recipe_architecture(cfg.classifier)
    assert arch == {
        "pooling": "avg",
        "widths": [3, 4],
        "fc_width": 6,
        "input_size": 8,
        "batch_norm": True,
    }
    torch.manual_seed(0)
    model = build_pooling_cnn(arch.pop("pooling"), 3, MEAN, STD, **arch)
    assert architecture_of(model) == recipe_architecture(cfg.classifier)


@pytest.mark.parametrize("robust", [False, True])
def test_train_classifier_is_train_pooling_cnn_with_the_recipe(robust):
    """The recipe's optimizer, epochs, batch size, augmentation and (robust) PGD training
    go to train_pooling_cnn; the train/val rows come from the split codes."""
    torch.set_num_threads(1)
    images = np.random.default_rng(1).uniform(0, 1, (20, 3, 16, 16)).astype(np.float32)
    labels = np.arange(20) % 3
    split = np.array([TRAIN] * 12 + [VAL] * 4 + [TEST] * 4, dtype=np.int8)
    cfg = IganTrainConfig.model_validate(
        {
            "classifier": {
                "epochs": 2,
                "batch_size": 5,
                "augment": False,
                "optimizer": {"name": "sgd", "lr": 0.02, "momentum": 0.5, "weight_decay": 1e-3},
            },
            "adversarial": {"eps": 0.05, "alpha": 0.25, "steps": 2},
        }
    )
    arch = {"widths": (3, 4), "fc_width": 6, "input_size": 8, "batch_norm": False}
    got, hist = train_classifier(
        cfg, "avg", arch, images, labels, split, 3, mean=MEAN, std=STD, chunk_size=8,
        robust=robust, seed=2, device=torch.device("cpu"),
    )  # fmt: skip
    want, want_hist = train_pooling_cnn(
        "avg", 3, arch, images, labels, np.arange(12), np.arange(12, 16),
        mean=MEAN, std=STD, epochs=2, batch_size=5, lr=0.02, momentum=0.5,
        weight_decay=1e-3, augment=False, chunk_size=8, seed=2, device=torch.device("cpu"),
        adversarial={"eps": 0.05, "alpha": 0.25, "steps": 2, "step_size": None} if robust else None,
    )  # fmt: skip
    assert hist == want_hist and len(hist) == 2
    for (k, v1), v2 in zip(got.state_dict().items(), want.state_dict().values(), strict=True):
        torch.testing.assert_close(v1, v2, rtol=0, atol=0, msg=k)
