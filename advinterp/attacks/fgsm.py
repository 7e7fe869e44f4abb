"""FGSM: the fast gradient sign method (Goodfellow et al., 2015), L-inf.

``x* = Clip_[0,1](x + eps * sign(∇_x J(f(x), y)))`` — the one-step case of IFGSM
(:mod:`advinterp.attacks.ifgsm`, Gulshad et al. Eq. 1) with a single step of size eps,
so both attacks share one loop, one projection and one frozen-model guard. Nguyen et al.
use FGSM as their L-inf attack.
"""

from __future__ import annotations

import torch
from torch import nn

from advinterp.attacks.ifgsm import linf_iterate


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Untargeted FGSM adversarial examples.

    Args:
        model: maps images in [0, 1] to logits; left in the state it was found in.
        eps: L-inf budget in pixel units ([0, 1] scale).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64 true classes.
        returns: (N, 3, H, W) float32 in [0, 1] with ``|x* - x|_inf <= eps``.
    """
    return linf_iterate(model, x, y, eps=eps, step_size=eps, steps=1, targeted=False)
