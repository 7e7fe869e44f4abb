"""Carlini & Wagner L2 attack (Carlini and Wagner, 2017) through torchattacks.

torchattacks' ``CW`` minimises ``||x* - x||_2^2 + c * max(Z_y - max_{i≠y} Z_i, -kappa)``
in tanh space (so x* stays in [0, 1]) by Adam, keeping per image the smallest-L2 example
that is misclassified; images it cannot fool come back unchanged. No binary search over
c (torchattacks leaves it out). Nguyen et al. use C&W as their L2 attack.
"""

from __future__ import annotations

import torch
import torchattacks
from torch import nn

from advinterp.models.frozen import frozen


def carlini_wagner(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    c: float = 1.0,
    kappa: float = 0.0,
    steps: int = 50,
    lr: float = 0.01,
) -> torch.Tensor:
    """Untargeted C&W-L2 adversarial examples against ``model`` (logits of [0, 1] images).

    The model is frozen during the attack (eval mode, no parameter gradients: torchattacks
    calls ``backward()``) and restored afterwards.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64 classes to move away from.
        returns: (N, 3, H, W) float32 in [0, 1].
    """
    with frozen(model):
        attack = torchattacks.CW(model, c=c, kappa=kappa, steps=steps, lr=lr)
        return attack(x, y).detach()
