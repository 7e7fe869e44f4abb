"""Eq. 2 adversarial training: the mix of losses, and robustness it buys."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.pgd import pgd
from advinterp.models.adversarial_training import adversarial_loss
from tests.attacks.toy import clean_accuracy, held_out, standard_toy_model, train_toy

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def test_alpha_one_is_clean_cross_entropy_and_params_untouched_by_pgd():
    model = copy.deepcopy(standard_toy_model()).train()
    for p in model.parameters():
        p.grad = None
    x, y = held_out(8)
    loss, logits = adversarial_loss(eps=0.05, alpha=1.0, steps=2)(model, x, y)
    assert all(p.grad is None for p in model.parameters())  # PGD wrote no param grads
    assert all(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    assert logits.shape == (8, 4)
    assert model.training


def test_mix_matches_eq2_by_hand():
    model = copy.deepcopy(standard_toy_model()).eval()  # eval: deterministic BN
    x, y = held_out(8)
    gen_seed = 3
    loss, _ = adversarial_loss(
        eps=0.05, alpha=0.3, steps=2, generator=torch.Generator().manual_seed(gen_seed)
    )(model, x, y)
    x_adv = pgd(model, x, y, eps=0.05, steps=2, generator=torch.Generator().manual_seed(gen_seed))
    expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(x_adv), y)
    torch.testing.assert_close(loss, expected)


def test_alpha_zero_is_the_adversarial_loss_with_clean_logits_outside_the_graph():
    model = copy.deepcopy(standard_toy_model()).eval()
    x, y = held_out(8)
    loss, logits = adversarial_loss(
        eps=0.05, alpha=0.0, steps=2, generator=torch.Generator().manual_seed(1)
    )(model, x, y)
    x_adv = pgd(model, x, y, eps=0.05, steps=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss, F.cross_entropy(model(x_adv), y))
    torch.testing.assert_close(logits, model(x))
    assert not logits.requires_grad  # no backward through the clean pass
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_alpha_out_of_range_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        adversarial_loss(eps=0.1, alpha=1.5)


def test_adversarial_training_raises_adversarial_accuracy():
    standard = standard_toy_model()
    robust = train_toy(
        epochs=3,
        loss_fn=adversarial_loss(eps=0.04, steps=3, generator=torch.Generator().manual_seed(0)),
        init=copy.deepcopy(standard),
    )
    x, y = held_out(64)
    assert clean_accuracy(robust, x, y) >= 0.8
    adv_std = clean_accuracy(standard, ifgsm(standard, x, y, eps=0.02, steps=10), y)
    adv_rob = clean_accuracy(robust, ifgsm(robust, x, y, eps=0.02, steps=10), y)
    assert adv_rob >= adv_std + 0.4, (adv_std, adv_rob)
