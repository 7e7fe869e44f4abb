"""Momentum PGD / MI-FGSM: L-inf invariants, state restored, reduces to IFGSM at μ = 0."""

from __future__ import annotations

import pytest
import torch

from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.mifgsm import mifgsm
from advinterp.attacks.pgd import pgd
from tests.attacks.toy import clean_accuracy, held_out, standard_toy_model

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("targeted", [False, True])
def test_invariants_and_model_state_restored(random_start, targeted):
    model = standard_toy_model()
    model.train()
    try:
        x, y = held_out(8)
        targets = (y + 1) % 4 if targeted else None
        eps = 0.05
        x_adv = mifgsm(
            model,
            x,
            y,
            eps=eps,
            steps=3,
            random_start=random_start,
            targets=targets,
            generator=torch.Generator().manual_seed(0),
        )
        assert x_adv.shape == x.shape and x_adv.dtype == torch.float32
        assert float((x_adv - x).abs().max()) <= eps + 1e-6
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
        assert not x_adv.requires_grad
        assert model.training
        assert all(p.requires_grad for p in model.parameters())
    finally:
        model.eval()


def test_zero_momentum_without_random_start_is_ifgsm():
    model = standard_toy_model()
    x, y = held_out(16)
    a = mifgsm(model, x, y, eps=0.04, steps=4, step_size=0.01, decay=0.0, random_start=False)
    b = ifgsm(model, x, y, eps=0.04, steps=4, step_size=0.01)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_momentum_attack_fools_the_standard_model_like_pgd():
    model = standard_toy_model()
    x, y = held_out(64)
    clean = clean_accuracy(model, x, y)
    gen = torch.Generator().manual_seed(0)
    m = clean_accuracy(model, mifgsm(model, x, y, eps=0.05, steps=10, generator=gen), y)
    p = clean_accuracy(model, pgd(model, x, y, eps=0.05, steps=10, generator=gen), y)
    assert m < clean - 0.3
    assert m <= p + 0.15  # same strength class as PGD on this model


def test_negative_arguments_refused():
    model = standard_toy_model()
    x, y = held_out(2)
    with pytest.raises(ValueError):
        mifgsm(model, x, y, eps=0.1, decay=-1.0)
