"""IFGSM and PGD: invariants over the registry, and what the attacks achieve."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from advinterp.attacks.ifgsm import ifgsm, linf_iterate, project_linf
from advinterp.attacks.pgd import pgd
from advinterp.attacks.registry import LINF_ATTACKS
from advinterp.models.classifier import build_classifier
from advinterp.models.frozen import frozen
from tests.attacks.toy import CLASSES, clean_accuracy, held_out, standard_toy_model

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def _untrained(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_classifier("tiny_resnet", CLASSES, (0.5,) * 3, (0.25,) * 3)


@pytest.mark.parametrize("name", sorted(LINF_ATTACKS))
@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.01, 0.3])
def test_invariants(name, targeted, eps):
    attack = LINF_ATTACKS[name]
    model = _untrained()
    model.train()  # the attack must hand the model back in train mode
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)  # the caller's gradients: must survive
    x = torch.rand(6, 3, 16, 16)
    x[0] = 0.0  # pixels at the range edges must stay clipped
    x[1] = 1.0
    y = torch.arange(6) % CLASSES
    t = (y + 1) % CLASSES if targeted else None
    x_adv = attack(
        model, x, y, eps=eps, steps=3, targets=t, generator=torch.Generator().manual_seed(0)
    )
    assert x_adv.shape == x.shape and x_adv.dtype == torch.float32
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert not x_adv.requires_grad
    assert model.training
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())


def test_eval_submodule_state_and_requires_grad_restored_after_error():
    model = _untrained()
    model.train()
    model.body.layers[0].eval()  # a frozen-BN style mix of modes
    model.head.weight.requires_grad_(False)
    before = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="boom"), frozen(model):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
        raise RuntimeError("boom")
    assert {n: m.training for n, m in model.named_modules()} == before
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags


def test_works_inside_no_grad_and_leaves_input_alone():
    model = _untrained()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    with torch.no_grad():
        x_adv = ifgsm(model, x, torch.tensor([0, 1]), eps=0.05, steps=2)
    assert x.grad is None
    assert (x_adv - x.detach()).abs().max() > 0  # it moved despite no_grad


def test_eq1_single_step_is_signed_gradient_then_clip():
    """One IFGSM step by hand: x + α sign(∇J), clipped to the ball and [0, 1]."""
    model = _untrained(1).eval()
    x = torch.rand(3, 3, 16, 16)
    y = torch.tensor([0, 1, 2])
    xr = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(xr), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, xr)
    expected = (x + 0.03 * g.sign()).clamp(0, 1)
    got = linf_iterate(model, x, y, eps=0.05, step_size=0.03, steps=1, targeted=False)
    torch.testing.assert_close(got, expected)
    # a step larger than eps is cut back to the ball
    got = linf_iterate(model, x, y, eps=0.01, step_size=0.03, steps=1, targeted=False)
    torch.testing.assert_close(got, project_linf(x + 0.03 * g.sign(), x, 0.01))


def test_momentum_steps_along_the_velocity_sign():
    """decay=0 is Eq. 1 exactly; with momentum the second step follows g1/|g1|_1 * μ + g2/|g2|_1."""
    model = _untrained(1).eval()
    x = torch.rand(3, 3, 16, 16)
    y = torch.tensor([0, 1, 2])
    kw = dict(eps=0.05, step_size=0.01, steps=3, targeted=False)
    assert torch.equal(linf_iterate(model, x, y, **kw), linf_iterate(model, x, y, decay=0.0, **kw))

    def grad(z):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(z), y, reduction="sum"), z)
        return g / g.abs().flatten(1).sum(1).view(-1, 1, 1, 1)

    v = grad(x)
    x1 = project_linf(x + 0.01 * v.sign(), x, 0.05)
    v = 0.5 * v + grad(x1)
    expected = project_linf(x1 + 0.01 * v.sign(), x, 0.05)
    got = linf_iterate(model, x, y, eps=0.05, step_size=0.01, steps=2, targeted=False, decay=0.5)
    torch.testing.assert_close(got, expected)


def test_batch_composition_does_not_change_ifgsm():
    model = _untrained(2)
    x = torch.rand(5, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 0])
    whole = ifgsm(model, x, y, eps=0.03, steps=4)
    parts = torch.cat(
        [
            ifgsm(model, x[:2], y[:2], eps=0.03, steps=4),
            ifgsm(model, x[2:], y[2:], eps=0.03, steps=4),
        ]
    )
    torch.testing.assert_close(whole, parts, atol=1e-6, rtol=0)


def test_pgd_random_start_is_seeded():
    model = _untrained(3)
    x = torch.rand(2, 3, 16, 16)
    y = torch.tensor([0, 1])
    a = pgd(model, x, y, eps=0.05, steps=1, generator=torch.Generator().manual_seed(5))
    b = pgd(model, x, y, eps=0.05, steps=1, generator=torch.Generator().manual_seed(5))
    c = pgd(model, x, y, eps=0.05, steps=1, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    # zero steps: the random start itself, inside the ball
    start = pgd(model, x, y, eps=0.05, steps=0, generator=torch.Generator().manual_seed(5))
    assert 0 < (start - x).abs().max() <= 0.05 + 1e-6


def test_untargeted_success_grows_with_eps():
    model = standard_toy_model()
    x, y = held_out(64)
    assert clean_accuracy(model, x, y) >= 0.9
    acc = [
        clean_accuracy(model, ifgsm(model, x, y, eps=e, steps=10), y)
        for e in (0.0, 0.005, 0.01, 0.02, 0.04)
    ]
    assert all(a >= b for a, b in itertools.pairwise(acc)), acc
    assert acc[-1] <= 0.1 < 0.9 <= acc[0], acc


def test_targeted_reaches_target_far_more_often_than_chance():
    model = standard_toy_model()
    x, y = held_out(64)
    targets = (y + 1 + torch.arange(64) % (CLASSES - 1)) % CLASSES
    assert not (targets == y).any()
    x_adv = ifgsm(model, x, y, eps=0.04, steps=10, targets=targets)
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == targets).float().mean().item()
    assert hit >= 0.8 > 3 / CLASSES, hit  # chance of hitting a given wrong class: 1/C
