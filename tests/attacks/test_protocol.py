"""The Attack protocol: what satisfies it, and that every registered attack does."""

from __future__ import annotations

import torch

from advinterp.attacks.protocol import Attack
from advinterp.attacks.suite import REGISTRY, CarliniWagner, Fgsm, Jsma


class Identity:
    """The smallest Attack: returns its input unchanged."""

    name = "identity"

    def __call__(self, model, x, y):
        return x.clone()


class Nameless:
    def __call__(self, model, x, y):
        return x


def test_protocol_is_a_name_and_a_call():
    assert isinstance(Identity(), Attack)
    assert not isinstance(Nameless(), Attack)
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(Identity()(torch.nn.Identity(), x, torch.zeros(2)), x)


def test_every_registered_attack_is_an_attack_with_a_distinct_name():
    instances = [Fgsm(0.1), Jsma(1.0, 0.1, None), CarliniWagner(1.0, 0.0, 1, 0.01)]
    assert [type(a) for a in instances] == list(REGISTRY)
    assert all(isinstance(a, Attack) for a in instances)
    assert len({a.name for a in instances}) == len(REGISTRY)
