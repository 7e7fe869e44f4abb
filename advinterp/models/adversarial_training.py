"""Adversarial training (Gulshad et al. Sec. 3.1, Eq. 2; Goodfellow et al. 2015).

``J_adv = α J(θ(x), y) + (1 - α) J(θ(x̂), y)``: a mix of the clean and the adversarial
cross-entropy, with x̂ recomputed for every batch by multi-step PGD against the
current weights (Madry et al.), as the paper does when it fine-tunes its ResNet. The
loss plugs into :func:`advinterp.models.training.fit` as its ``loss_fn``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from advinterp.attacks.pgd import pgd
from advinterp.models.classifier import ImageClassifier

LossFn = Callable[[ImageClassifier, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def adversarial_loss(
    *,
    eps: float,
    alpha: float = 0.5,
    steps: int = 3,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> LossFn:
    """Eq. 2 as a ``loss_fn(model, x, y) -> (loss, clean logits)`` for ``fit``.

    PGD runs with the model in eval mode and its parameters frozen (restored after), so
    crafting x̂ neither updates batch-norm statistics nor writes parameter gradients;
    both losses are then computed in the model's training mode.

    Args:
        eps: L-inf budget of the training attack, pixel units.
        alpha: weight of the clean loss, in [0, 1] (α = 1 is standard training).
        steps, step_size: PGD iterations and step (default 2.5 eps / steps).
        generator: seeds PGD's random starts.

    Shape:
        x: (B, 3, H, W) float32 in [0, 1]; y: (B,) int64.
        returns: scalar loss, clean logits (B, C).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")

    def loss_fn(
        model: ImageClassifier, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = pgd(model, x, y, eps=eps, steps=steps, step_size=step_size, generator=generator)
        if alpha == 0.0:
            # Adversarial loss only: the clean logits (train accuracy, BN statistics as
            # in every other setting) need no backward pass.
            with torch.no_grad():
                logits = model(x)
            return F.cross_entropy(model(x_adv), y), logits
        logits = model(x)
        loss = alpha * F.cross_entropy(logits, y)
        if alpha < 1.0:
            loss = loss + (1.0 - alpha) * F.cross_entropy(model(x_adv), y)
        return loss, logits

    return loss_fn
