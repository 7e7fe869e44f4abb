"""LAN masks (Grimm et al. Eq. 2-3): range and shape, training lowers Eq. 3, f1 untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.explainers.lan import (
    LAN_ARCHS,
    attention_masks,
    build_lan,
    corrupt,
    corrupted_agreement,
    lan_from_state,
    lan_objective,
    lan_state,
    load_lan,
    sample_noise,
    train_lan,
)
from advinterp.models.classifier import build_classifier
from tests.attacks.toy import held_out, standard_toy_model, toy_images
from tests.models.loader_checks import check_loader

CPU = torch.device("cpu")
SHAPE = (3, 16, 16)
HIDDEN = {"fc": (32, 32), "conv": (8, 16)}


@pytest.mark.parametrize("arch", sorted(LAN_ARCHS))
def test_masks_lie_in_unit_interval_with_the_input_shape(arch):
    torch.manual_seed(0)
    lan = build_lan(arch, SHAPE, HIDDEN[arch])
    x = torch.rand(5, *SHAPE)
    m = lan(x * 50 - 25)  # even far outside [0, 1] inputs give masks in [0, 1]
    assert m.shape == x.shape
    assert float(m.detach().min()) >= 0.0 and float(m.detach().max()) <= 1.0
    masks = attention_masks(lan, x.numpy(), batch_size=2, device=CPU)
    assert masks.shape == (5, *SHAPE) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    # Batch size does not change the masks.
    np.testing.assert_allclose(masks, attention_masks(lan, x.numpy(), 5, CPU), atol=1e-6)


def test_corrupt_is_eq2_with_a_keep_mask():
    x = torch.tensor([[[[0.2, 0.8]]]])
    eta = torch.tensor([[[[1.0, 0.0]]]])
    m = torch.tensor([[[[1.0, 0.25]]]])  # keep the first pixel, mostly replace the second
    np.testing.assert_allclose(corrupt(x, m, eta).flatten().numpy(), [0.2, 0.25 * 0.8])


def test_noise_kinds():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 2, 2) / 4
    boot = sample_noise(x, "bootstrap", gen)
    # Every image is replaced by another image of the batch, never by itself.
    firsts = boot[:, 0, 0, 0]
    assert sorted(firsts.tolist()) == sorted(x[:, 0, 0, 0].tolist())
    assert not torch.any(firsts == x[:, 0, 0, 0])
    assert torch.all(sample_noise(x, "constant", gen, constant=0.3) == 0.3)
    u = sample_noise(x, "uniform", gen)
    assert u.shape == x.shape and float(u.min()) >= 0 and float(u.max()) <= 1


def test_objective_terms_by_hand():
    """A classifier that ignores its input: the output term is its CE, the keep term mean(m)."""
    logits = torch.tensor([[2.0, 0.0, -1.0]])

    class Constant(torch.nn.Module):
        def forward(self, x):
            return logits.expand(len(x), 3) + 0 * x.sum()

    x = torch.rand(2, 3, 4, 4)
    m = torch.full_like(x, 0.25)
    total, term, keep = lan_objective(Constant(), m, x, torch.zeros_like(x), beta=2.0)
    ce = float(-torch.log_softmax(logits, 1)[0, 0])  # f1's decision is class 0
    assert float(term) == pytest.approx(ce, rel=1e-5)
    assert float(keep) == pytest.approx(0.25)
    assert float(total) == pytest.approx(ce + 2.0 * 0.25, rel=1e-5)


def _fixed_objective(lan, f1, x, eta, beta):
    with torch.no_grad():
        return float(lan_objective(f1, lan(x), x, eta, beta)[0])


@pytest.mark.parametrize("arch", sorted(LAN_ARCHS))
def test_training_lowers_the_objective_and_leaves_f1_as_it_was(arch):
    torch.manual_seed(0)
    f1 = standard_toy_model()
    x_np, _ = toy_images(32, seed=5)
    x = torch.as_tensor(x_np)
    eta = sample_noise(x, "bootstrap", torch.Generator().manual_seed(3))
    lan = build_lan(arch, SHAPE, HIDDEN[arch])
    beta = 0.5
    before = _fixed_objective(lan, f1, x, eta, beta)
    f1.train()  # a caller's mode must survive
    grads = [p.requires_grad for p in f1.parameters()]
    state = {k: v.clone() for k, v in f1.state_dict().items()}
    param_grads = [None if p.grad is None else p.grad.clone() for p in f1.parameters()]
    try:
        history = train_lan(
            lan,
            f1,
            lambda epoch: ((x[s : s + 16], None) for s in range(0, 32, 16)),
            epochs=5,
            steps_per_epoch=2,
            lr=3e-3,
            beta=beta,
            noise="bootstrap",
            generator=torch.Generator().manual_seed(0),
            device=CPU,
        )
        assert f1.training
        assert [p.requires_grad for p in f1.parameters()] == grads
        for p, g in zip(f1.parameters(), param_grads, strict=True):  # no .grad written
            assert (p.grad is None and g is None) or torch.equal(p.grad, g)
        for k, v in f1.state_dict().items():  # BatchNorm statistics untouched (eval inside)
            assert torch.equal(v, state[k]), k
    finally:
        f1.eval()
    after = _fixed_objective(lan, f1, x, eta, beta)
    assert after < before - 0.05, (before, after)
    assert history[-1]["objective"] < history[0]["objective"]
    assert not lan.training


def test_kl_output_loss_is_zero_when_nothing_is_corrupted():
    f1 = standard_toy_model()
    x, _ = held_out(8)
    m = torch.ones_like(x)
    _, term, _ = lan_objective(f1, m, x, torch.rand_like(x), beta=1.0, output_loss="kl")
    assert float(term.detach()) == pytest.approx(0.0, abs=1e-6)


def test_checkpoint_roundtrip_and_agreement():
    torch.manual_seed(0)
    lan = build_lan("conv", SHAPE, HIDDEN["conv"])
    back = lan_from_state(lan_state(lan, note="x"))
    x = torch.rand(3, *SHAPE)
    assert torch.equal(lan(x), back(x))
    with pytest.raises(ValueError, match="not a LAN checkpoint"):
        lan_from_state({"format": "other"})
    # A mask of ones corrupts nothing: f1 keeps every decision.
    f1 = build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3).eval()

    class Ones(torch.nn.Module):
        def forward(self, x):
            return torch.ones_like(x)

    agree = corrupted_agreement(Ones(), f1, x.numpy(), "uniform", torch.Generator(), 2, CPU)
    assert agree == 1.0


def test_load_lan_roundtrip_and_refusals(tmp_path):
    torch.manual_seed(0)
    lan = build_lan("fc", SHAPE, HIDDEN["fc"])
    check_loader(
        load_lan,
        lan,
        lan_state(lan, note="x"),
        SHAPE,
        tmp_path,
        foreign_format="advinterp-classifier/1",
        kind="LAN",
    )
