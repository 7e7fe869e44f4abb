"""One calling convention for a configured attack: ``attack(model, x, y) -> x_adv``.

An :class:`Attack` holds its own parameters (budget, steps, target rule), so code that
runs several attacks of different distance measures (Nguyen et al.'s FGSM, JSMA and
C&W, :mod:`advinterp.attacks.suite`) needs one loop and no per-attack keyword lists.

The attack functions stay plain functions with the paper's defaults
(:func:`advinterp.attacks.fgsm.fgsm`, :func:`advinterp.attacks.jsma.jsma`,
:func:`advinterp.attacks.cw.carlini_wagner`, :func:`advinterp.attacks.ifgsm.ifgsm`,
:func:`advinterp.attacks.pgd.pgd`, :mod:`advinterp.attacks.localized`,
:mod:`advinterp.attacks.attack_to_explain`); an :class:`Attack` binds one of them to a
configuration. The attribute chain's L-inf attacks keep their own per-call budget
signature (:class:`advinterp.attacks.registry.LinfAttack`: eps, steps and targets
vary per call there).
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Attack(Protocol):
    """A configured attack: adversarial versions of a batch against one model.

    An implementation leaves the model as it found it (train/eval mode,
    ``requires_grad``, parameter ``.grad``) and never changes its weights.

    Attributes:
        name: short name, as results and stores record it (e.g. ``"fgsm"``).

    Shape:
        x: (N, C, H, W) float32 in [0, 1]; y: (N,) int64 true classes.
        returns: (N, C, H, W) float32 in [0, 1], on x's device.
    """

    name: ClassVar[str]

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial examples of ``x`` (true classes ``y``) against ``model``."""
        ...
