"""MI-FGSM / momentum PGD (Dong et al. 2018), L-inf: the "M-PGD" of Zheng et al. Tables 2-3.

Each step accumulates the L1-normalised input gradient into a velocity,
``g <- μ g + ∇_x J(x̂, y) / ||∇_x J(x̂, y)||_1``, and moves along its sign,
``x̂ <- Clip_eps{x̂ + α sign(g)}``. With ``random_start`` it starts, like PGD, from a
uniform point of the eps-ball (momentum PGD); without, from the clean image (MI-FGSM).

It runs IFGSM/PGD's loop, :func:`~advinterp.attacks.ifgsm.linf_iterate`, with its
``decay`` (the velocity update) set, from :func:`~advinterp.attacks.ifgsm.uniform_start`.
torchattacks' ``MIFGSM`` has no random start and no per-sample targets, hence this file.
"""

from __future__ import annotations

import torch
from torch import nn

from advinterp.attacks.ifgsm import linf_iterate, uniform_start


def mifgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    decay: float = 1.0,
    random_start: bool = True,
    targets: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Momentum iterative FGSM / momentum PGD adversarial examples.

    Args:
        model: maps images in [0, 1] to logits; left in the state it was found in
            (eval/train flags, ``requires_grad``, no parameter ``.grad`` written).
        eps: L-inf budget in pixel units ([0, 1] scale).
        steps: iterations; ``step_size`` α defaults to eps / steps (Dong et al.).
        decay: momentum factor μ (1.0 in the paper; 0 gives IFGSM/PGD).
        random_start: start from a uniform point of the eps-ball (momentum PGD).
        targets: target class per sample (descend its loss) for a targeted attack.
        generator: seeds the random start.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y, targets: (N,) int64.
        returns: (N, 3, H, W) float32 in [0, 1] with ``|x̂ - x|_inf <= eps``, detached.
    """
    if eps < 0 or steps < 0 or decay < 0:
        raise ValueError(f"eps, steps and decay must be >= 0, got {eps}, {steps}, {decay}")
    alpha = eps / max(steps, 1) if step_size is None else step_size
    x0 = uniform_start(x, eps, generator) if random_start else None
    y, targeted = (y, False) if targets is None else (targets, True)
    return linf_iterate(
        model, x, y, eps=eps, step_size=alpha, steps=steps, targeted=targeted, start=x0, decay=decay
    )
