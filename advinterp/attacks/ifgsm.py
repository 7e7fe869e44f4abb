"""IFGSM / BIM: the iterative fast gradient sign method (Kurakin et al. 2017).

Gulshad et al., Sec. 3.1, Eq. 1: starting from the clean image, repeat
``x̂ <- Clip_eps{x̂ + α sign(∇_x̂ J(x̂, y))}`` (untargeted: climb the loss of the true
class) or ``x̂ <- Clip_eps{x̂ - α sign(∇_x̂ J(x̂, y_t))}`` (targeted: descend the loss of
the target class). Distance: L-inf in pixel space [0, 1]; after every step the image is
projected onto the eps-ball around the clean image and onto [0, 1].

Hand-written rather than torchattacks' ``BIM``: the pipeline needs targets per sample,
a PGD random start sharing the same loop, a model left exactly as it was found
(train/eval mode, ``requires_grad``, no parameter ``.grad`` written) and pixel-space
clipping, in one small function; ``bench/`` compares its throughput with torchattacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from advinterp.models.frozen import frozen


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L-inf ball of radius ``eps`` around ``x``, then onto [0, 1].

    Shape:
        x_adv, x: (N, 3, H, W) float32; returns the same shape, in [0, 1].
    """
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def linf_iterate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    targeted: bool,
    start: torch.Tensor | None = None,
    decay: float | None = None,
) -> torch.Tensor:
    """The signed-gradient loop shared by IFGSM, PGD (Eq. 1) and MI-FGSM.

    Args:
        y: the class whose cross-entropy is climbed (untargeted) or descended (targeted).
        start: first iterate (PGD's random start); the clean image when ``None``.
        decay: momentum μ of MI-FGSM (Dong et al.): step along the sign of the velocity
            ``g <- μ g + ∇ / ||∇||_1`` instead of the gradient's; ``None`` for plain Eq. 1.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64.
        returns: (N, 3, H, W) float32 in [0, 1] with ``|x̂ - x|_inf <= eps``, detached.
    """
    if eps < 0 or step_size < 0 or steps < 0:
        raise ValueError(f"eps, step_size and steps must be >= 0, got {eps}, {step_size}, {steps}")
    x = x.detach()
    y = y.to(x.device)
    x_adv = x.clone() if start is None else project_linf(start.detach(), x, eps)
    direction = -1.0 if targeted else 1.0
    velocity = torch.zeros_like(x)
    with frozen(model), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            # Summed, not averaged: a sample's gradient must not shrink with the batch size.
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            if decay is not None:
                l1 = grad.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
                velocity = decay * velocity + grad / l1
                grad = velocity
            x_adv = project_linf(x_adv.detach() + direction * step_size * grad.sign(), x, eps)
    return x_adv.detach()


def default_step_size(eps: float, steps: int) -> float:
    """α = 2.5 eps / steps (Madry et al.): enough to reach the ball's edge from anywhere."""
    return 2.5 * eps / max(steps, 1)


def uniform_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """``x`` plus uniform noise in [-eps, eps] (drawn on the CPU so seeds are portable).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; returns the same shape (not yet clipped).
    """
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    return x.detach() + eps * noise.to(x.device)


@dataclass(frozen=True)
class SignGradientAttack:
    """Eq. 1's loop (:func:`linf_iterate`) from the clean image (IFGSM) or, with
    ``random_start``, from a uniform point of the eps-ball (PGD, Madry et al. 2018)."""

    random_start: bool

    def __call__(
        self,
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
        """Adversarial examples, untargeted or, given ``targets``, targeted.

        Args:
            model: maps images in [0, 1] to logits; left in the state it was found in.
            eps: L-inf budget in pixel units ([0, 1] scale).
            steps: iterations; ``step_size`` α defaults to :func:`default_step_size`.
            targets: target class per sample for the targeted attack.
            generator: seeds the random start; unused without one (IFGSM is
                deterministic), accepted so every L-inf attack in
                :mod:`advinterp.attacks.registry` shares one signature.

        Shape:
            x: (N, 3, H, W) float32 in [0, 1]; y, targets: (N,) int64.
            returns: (N, 3, H, W) float32 in [0, 1], ``|x̂ - x|_inf <= eps``.
        """
        alpha = default_step_size(eps, steps) if step_size is None else step_size
        start = uniform_start(x, eps, generator) if self.random_start else None
        goal, targeted = (y, False) if targets is None else (targets, True)
        return linf_iterate(
            model, x, goal, eps=eps, step_size=alpha, steps=steps, targeted=targeted, start=start
        )


ifgsm = SignGradientAttack(random_start=False)
"""IFGSM adversarial examples (Eq. 1): :class:`SignGradientAttack` from the clean image."""
