"""The training loop learns a separable toy problem and restores eval mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.models.classifier import build_classifier
from advinterp.models.training import accuracy, augment_batch, cosine_lr, fit, make_optimizer


def _toy(n=64, size=16):
    """Class 0: dark images, class 1: bright images (trivially separable)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = (rng.random((n, 3, size, size)) * 0.4 + labels[:, None, None, None] * 0.5).astype(
        np.float32
    )
    return images, labels


def test_fit_learns_and_returns_history():
    torch.manual_seed(0)
    images, labels = _toy()
    model = build_classifier("tiny_resnet", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    rng = np.random.default_rng(0)
    rows = np.arange(len(labels))
    y = torch.as_tensor(labels)

    def batches(epoch):
        return ((x, y[i]) for i, x in iter_shuffled_batches(images, rows, 16, 8, 64, rng))

    def val():
        return ((x, y[i]) for i, x in iter_batches(images, rows, 32, 8))

    history = fit(
        model,
        batches,
        val,
        epochs=4,
        steps_per_epoch=4,
        optimizer=make_optimizer(model, "sgd", 0.05, 0.9, 0.0),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        augment=True,
    )
    assert len(history) == 4
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_accuracy"] >= 0.95
    assert accuracy(model, val(), torch.device("cpu")) == history[-1]["val_accuracy"]
    assert not model.training


def test_augment_keeps_shape_range_and_content():
    x = torch.rand(8, 3, 16, 16)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    # A translation/flip keeps most pixel values: per-image means barely move.
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.05, rtol=0)


def test_fit_on_split_is_fit_split_on_the_schedule():
    """The driver builds the batches and optimiser exactly as a hand-written fit_split."""
    import zarr

    from advinterp.config.core import OptimizerParams
    from advinterp.data.batches import SplitBatches
    from advinterp.models.training import fit_on_split, fit_split

    images, labels = _toy(n=24)
    array = zarr.array(images, chunks=(8, 3, 16, 16))
    split = np.array([0] * 16 + [1] * 4 + [2] * 4, np.int8)

    class Schedule:
        epochs, batch_size = 2, 8
        optimizer = OptimizerParams(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)

    def model():
        torch.manual_seed(3)
        return build_classifier("tiny_vgg", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

    got = model()
    data, history = fit_on_split(
        got, array, labels, split, Schedule, device=torch.device("cpu"), seed=4
    )
    want = model()
    want_history = fit_split(
        want,
        SplitBatches(array, labels, split, 8, 8),
        epochs=2,
        optimizer=make_optimizer(want, "sgd", 0.05, 0.9, 1e-4),
        device=torch.device("cpu"),
        seed=4,
    )
    assert history == want_history and data.batch_size == 8
    for a, b in zip(got.parameters(), want.parameters(), strict=True):
        assert torch.equal(a, b)


def test_cosine_lr_warms_up_then_decays_per_group():
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    opt = torch.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.4}], lr=0.2)
    base = [0.2, 0.4]

    def lrs(step, warmup=0):
        cosine_lr(opt, base, step, 10, warmup)
        return [g["lr"] for g in opt.param_groups]

    assert lrs(0) == [0.2, 0.4]  # cos(0) = 1
    assert lrs(5) == pytest.approx([0.1, 0.2])  # half way: cos(pi / 2) = 0
    assert lrs(1, warmup=2) == [0.2, 0.4]  # (1 + 1) / 2
    assert lrs(0, warmup=2) == [0.1, 0.2]
    assert lrs(6, warmup=2) == pytest.approx([0.1, 0.2])  # (6 - 2) / (10 - 2) = 1 / 2
    # the classifier's old expression, to the bit
    assert lrs(3)[0] == 0.5 * 0.2 * (1 + math.cos(math.pi * 3 / 10))


def _toy_fit(optimizer_of, epochs=2):
    """:func:`fit` of a fresh tiny model on the toy problem (2 epochs of 2 steps)."""
    torch.manual_seed(0)
    images, labels = _toy(n=32)
    model = build_classifier("tiny_resnet", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    rows = np.arange(len(labels))
    y = torch.as_tensor(labels)

    def batches(epoch):
        return ((x, y[i]) for i, x in iter_batches(images, rows, 16, 8))

    return fit(
        model,
        batches,
        lambda: batches(0),
        epochs=epochs,
        steps_per_epoch=2,
        optimizer=optimizer_of(model),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        augment=False,
    )


def test_fit_stops_on_a_diverging_loss():
    """An absurd learning rate: the loss turns NaN/inf and fit raises instead of going on."""
    from advinterp.errors import ParamError
    from advinterp.models.training import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match="training diverged") as err:
        _toy_fit(lambda m: make_optimizer(m, "sgd", 1e12, 0.9, 0.0), epochs=3)
    assert isinstance(err.value, ParamError)  # input error: one line, exit 2 in a stage


def test_fit_stops_when_the_last_step_leaves_non_finite_weights():
    """A finite loss on every step, but the last update leaves NaN weights: caught after the
    epoch, before any checkpoint could be written from them."""
    from advinterp.models.training import TrainingDivergedError

    class Poisoning(torch.optim.SGD):
        steps = 0

        def step(self, closure=None):
            out = super().step(closure)
            self.steps += 1
            if self.steps == 2:  # the epoch's last step
                self.param_groups[0]["params"][0].data.fill_(float("nan"))
            return out

    with pytest.raises(TrainingDivergedError, match="weight .* is NaN or inf after epoch 1/1"):
        _toy_fit(lambda m: Poisoning(m.parameters(), lr=0.01), epochs=1)


def test_fit_on_split_names_the_params_that_diverged():
    """The error names the schedule's section and its optimizer params (train.optimizer.lr)."""
    import zarr

    from advinterp.config.train import TrainConfig
    from advinterp.models.training import TrainingDivergedError, fit_on_split

    torch.manual_seed(0)
    images, labels = _toy(n=24)
    array = zarr.array(images, chunks=(8, 3, 16, 16))
    split = np.array([0] * 16 + [1] * 4 + [2] * 4, np.int8)
    cfg = TrainConfig(
        epochs=3, batch_size=8, optimizer={"name": "sgd", "lr": 1e12, "momentum": 0.9}
    )
    model = build_classifier("tiny_resnet", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with pytest.raises(TrainingDivergedError) as err:
        fit_on_split(model, array, labels, split, cfg, device=torch.device("cpu"), seed=0)
    message = str(err.value)
    assert message.startswith("train.optimizer.lr=1e+12 (train.optimizer.name=sgd"), message
    assert "training diverged" in message and "lower the learning rate" in message
    assert "\n" not in message
