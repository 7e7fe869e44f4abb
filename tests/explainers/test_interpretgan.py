"""InterpretGAN (Eqs. 2-4): L_I rises in training, explanations look like the data's
shape and range, the classifier is handed back untouched, checkpoints round-trip."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from advinterp.errors import CheckpointError
from advinterp.explainers.interpretgan import (
    Compressor,
    GanSchedule,
    InterpretGAN,
    explain,
    gans_from_state,
    gans_state,
    interpretability_term,
    train_interpretgan,
)
from advinterp.models.pooling_cnn import build_pooling_cnn, latent_fn
from advinterp.models.training import make_optimizer
from tests.models.toy_fit import fit_in_memory

SIZE, CLASSES = 16, 3


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c: a bright square in channel c at a class-specific corner, on noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    x = 0.3 * torch.rand(n, 3, SIZE, SIZE, generator=g)
    for i, c in enumerate(y.tolist()):
        r0, c0 = (0, 0) if c == 0 else (0, SIZE // 2) if c == 1 else (SIZE // 2, 0)
        x[i, c, r0 : r0 + SIZE // 2, c0 : c0 + SIZE // 2] += 0.6
    return x.clamp(0, 1), y


@functools.cache
def _classifier():
    torch.manual_seed(0)
    model = build_pooling_cnn(
        "max", CLASSES, (0.4,) * 3, (0.3,) * 3, widths=(4, 8), fc_width=16, input_size=8
    )
    x, y = _data(96, seed=1)
    fit_in_memory(
        model,
        x,
        y,
        [(x, y)],
        lambda epoch: torch.randperm(96, generator=torch.Generator().manual_seed(epoch)),
        epochs=12,
        optimizer=make_optimizer(model, "adam", 0.01, 0.9, 0.0),
        augment=False,
    )
    return model.eval()


def _gan(layer: str, model, gen_size: int = 8, seed: int = 0) -> InterpretGAN:
    torch.manual_seed(seed)
    x, _ = _data(2, seed=5)
    with torch.no_grad():
        shape = latent_fn(model)(x)[layer].shape[1:]
    return InterpretGAN(
        layer,
        shape,
        SIZE,
        channels=3,
        code_dim=8,
        compress_width=4,
        gen_width=4,
        disc_width=4,
        gen_size=gen_size,
    )


def _batches(epoch: int):
    x, _ = _data(96, seed=10 + epoch)
    for s in range(0, 96, 16):
        yield x[s : s + 16]


def test_classifier_fixture_learned_the_task():
    model = _classifier()
    x, y = _data(60, seed=2)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9


@pytest.mark.parametrize("layer", ["conv2", "fc1"])
def test_interpretability_term_rises_during_training(layer):
    model = _classifier()
    gan = _gan(layer, model)
    history = train_interpretgan(
        gan, model, latent_fn(model), _batches, 6, GanSchedule(epochs=5, lam=1.0, lr_g=5e-3)
    )
    li = [h["interpretability"] for h in history]
    assert all(v <= 0 for v in li)  # a mean log-likelihood
    assert li[-1] > li[0] + 0.3, li
    assert history[-1]["agreement"] > history[0]["agreement"], history
    assert not gan.training


def test_without_the_interpretability_term_explanations_ignore_the_class():
    """λ = 0 is a plain GAN: f's agreement with x's class stays near chance."""
    model = _classifier()
    gan = _gan("fc1", model)
    history = train_interpretgan(
        gan, model, latent_fn(model), _batches, 6, GanSchedule(epochs=5, lam=0.0, lr_g=5e-3)
    )
    with_li = _gan("fc1", model)
    history_li = train_interpretgan(
        with_li, model, latent_fn(model), _batches, 6, GanSchedule(epochs=5, lr_g=5e-3)
    )
    assert history_li[-1]["interpretability"] > history[-1]["interpretability"] + 0.3


@pytest.mark.parametrize("gen_size", [8, 16])
def test_explanations_have_the_data_shape_and_range(gen_size):
    model = _classifier()
    gan = _gan("conv1", model, gen_size=gen_size)
    gan.train()
    x, _ = _data(5, seed=3)
    out = explain(gan, latent_fn(model), x, batch_size=2)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert gan.training  # mode restored
    assert explain(gan, latent_fn(model), x[:0]).shape == (0, 3, SIZE, SIZE)


def test_classifier_is_handed_back_untouched():
    model = _classifier()
    gan = _gan("fc2", model)
    model.train()
    for p in model.parameters():
        p.grad = None  # fit() left the last step's gradients
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        train_interpretgan(gan, model, latent_fn(model), _batches, 6, GanSchedule(epochs=1))
        assert model.training
        assert all(p.requires_grad for p in model.parameters())
        assert all(p.grad is None for p in model.parameters())
        for k, v in model.state_dict().items():  # BN statistics included: f ran in eval
            torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    finally:
        model.eval()


def test_interpretability_term_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    expected = 0.5 * (np.log(np.exp(2) / (np.exp(2) + 1)) + np.log(0.5))
    assert float(interpretability_term(logits, y)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("shape", "flat"),
    [((4, 16, 16), 8 * 4 * 4), ((4, 8, 8), 4 * 4 * 4), ((4, 4, 4), 64), ((10,), 10)],
)
def test_compressor_follows_table_4(shape, flat):
    """Conv layers: conv + avg-pool blocks until the side is <= 4, then FC; FC layers: FC."""
    c = Compressor(shape, code_dim=5, width=4)
    assert c.net[-1].in_features == flat
    assert c(torch.rand(2, *shape)).shape == (2, 5)


def test_state_round_trip(tmp_path):
    model = _classifier()
    gans = {"conv1": _gan("conv1", model, seed=1), "fc3": _gan("fc3", model, seed=2)}
    torch.save(gans_state(gans, model="natural"), tmp_path / "g.pt")
    obj = torch.load(tmp_path / "g.pt", weights_only=True)
    back = gans_from_state(obj, "g.pt")
    x, _ = _data(4, seed=4)
    for layer, gan in gans.items():
        torch.testing.assert_close(
            explain(back[layer], latent_fn(model), x), explain(gan, latent_fn(model), x)
        )
    obj["gans"]["fc3"]["config"]["code_dim"] = 9
    with pytest.raises(CheckpointError, match="fc3"):
        gans_from_state(obj, "g.pt")
    with pytest.raises(CheckpointError, match="not an InterpretGAN"):
        gans_from_state({"format": "x"}, "g.pt")


def test_warm_start_copies_g_and_d_but_not_c():
    model = _classifier()
    deep, shallow = _gan("fc2", model, seed=1), _gan("fc1", model, seed=2)
    c_before = {k: v.clone() for k, v in shallow.compressor.state_dict().items()}
    shallow.warm_start_from(deep)
    for a, b in ((shallow.generator, deep.generator), (shallow.discriminator, deep.discriminator)):
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)
    for k, v in shallow.compressor.state_dict().items():  # C stays the layer's own
        torch.testing.assert_close(v, c_before[k], rtol=0, atol=0)
        assert not torch.equal(v, deep.compressor.state_dict()[k])


def test_explanations_do_not_depend_on_the_batch():
    """G has no batch norm: explaining images one by one or together gives the same."""
    model = _classifier()
    gan = _gan("conv2", model)
    train_interpretgan(gan, model, latent_fn(model), _batches, 6, GanSchedule(epochs=1))
    x, _ = _data(4, seed=6)
    torch.testing.assert_close(
        explain(gan, latent_fn(model), x, batch_size=1), explain(gan, latent_fn(model), x)
    )
