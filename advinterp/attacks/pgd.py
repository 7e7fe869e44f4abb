"""PGD: projected gradient descent with a random start (Madry et al. 2018), L-inf.

Gulshad et al. generate the adversarial examples of adversarial training (Eq. 2) with
"projected gradient descent, a multi-step variant of FGSM" (Sec. 4). PGD is IFGSM
(:func:`advinterp.attacks.ifgsm.linf_iterate`, the same loop) started from a uniformly
random point of the eps-ball instead of the clean image.
"""

from __future__ import annotations

import torch
from torch import nn

from advinterp.attacks.ifgsm import default_step_size, linf_iterate


def random_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """``x`` plus uniform noise in [-eps, eps] (drawn on the CPU so seeds are portable).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; returns the same shape (not yet clipped).
    """
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    return x.detach() + eps * noise.to(x.device)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    targets: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD adversarial examples, untargeted or, given ``targets``, targeted.

    Args:
        model: maps images in [0, 1] to logits; left in the state it was found in.
        eps: L-inf budget in pixel units; ``step_size`` defaults to 2.5 eps / steps.
        generator: seeds the random start.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y, targets: (N,) int64.
        returns: (N, 3, H, W) float32 in [0, 1], ``|x̂ - x|_inf <= eps``.
    """
    alpha = default_step_size(eps, steps) if step_size is None else step_size
    start = random_start(x, eps, generator)
    goal, targeted = (y, False) if targets is None else (targets, True)
    return linf_iterate(
        model, x, goal, eps=eps, step_size=alpha, steps=steps, targeted=targeted, start=start
    )
