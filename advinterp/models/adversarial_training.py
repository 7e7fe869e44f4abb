"""Adversarial training (Gulshad et al. Sec. 3.1, Eq. 2; Goodfellow et al. 2015).

``J_adv = α J(θ(x), y) + (1 - α) J(θ(x̂), y)``: a mix of the clean and the adversarial
cross-entropy, with x̂ recomputed for every batch by multi-step PGD against the
current weights (Madry et al.), as the paper does when it fine-tunes its ResNet. The
loss plugs into :func:`advinterp.models.training.fit` as its ``loss_fn``;
:func:`train_robust_model` fine-tunes one model at one training eps with it (the stage
runs once per eps) and scores it under PGD (:func:`robust_accuracy`) beside the standard
model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from advinterp.attacks.pgd import pgd
from advinterp.data.adversarial import model_key
from advinterp.data.batches import SplitBatches
from advinterp.models.classifier import ImageClassifier
from advinterp.models.training import SHUFFLE_BUFFER, accuracy, fit, make_optimizer

log = logging.getLogger(__name__)

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


def robust_accuracy(
    model: ImageClassifier,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    eps: float,
    steps: int,
    device: torch.device,
    seed: int,
) -> float:
    """Top-1 accuracy under PGD (random start, ``steps`` steps of 2.5 eps / steps) at ``eps``.

    One generator seeded with ``seed`` draws every batch's random start in turn, so the
    same batches give the same number. The model runs in the mode it is in (the
    checkpoints here are in eval mode; PGD itself runs frozen, in eval mode).

    Shape:
        batches: (images (b, 3, H, W) float32 in [0, 1], labels (b,) int) pairs.
        returns: a float in [0, 1] (0 for no images).
    """
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    for x, y in batches:
        xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
        x_adv = pgd(model, xt, yt, eps=eps, steps=steps, generator=generator)
        with torch.no_grad():
            correct += int((model(x_adv).argmax(1) == yt).sum())
        total += len(y)
    return correct / max(total, 1)


@dataclass
class RobustModel:
    """What :func:`train_robust_model` returns.

    Attributes:
        key: the model's key, ``at_<eps>``.
        model: the fine-tuned classifier.
        history: one record per epoch: ``model``, ``train_eps`` and fit's columns.
        metrics: clean and PGD accuracy of it and of the standard model (``train_eps``,
            ``clean_accuracy``, ``adv_accuracy``, ``standard_clean_accuracy``,
            ``standard_adv_accuracy``).
    """

    key: str
    model: ImageClassifier
    history: list[dict[str, Any]]
    metrics: dict[str, float]


def train_robust_model(
    load_standard: Callable[[], ImageClassifier],
    data: SplitBatches,
    eval_set: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    eps: float,
    alpha: float,
    steps: int,
    step_size: float | None,
    epochs: int,
    optimizer: Mapping[str, Any],
    augment: bool,
    eval_steps: int,
    device: torch.device,
    seed: int,
) -> RobustModel:
    """Eq. 2 fine-tuning of the standard classifier at one training eps.

    The model starts from a fresh ``load_standard()`` and trains with epoch shuffles
    from ``default_rng([seed, 0])`` and one torch generator seeded ``seed + 1000``
    shared by the augmentation and PGD's random starts: the seeds depend on nothing but
    ``seed``, so a model is the same whichever other eps are trained beside it. It and
    the standard model are then scored on ``eval_set``, clean and under PGD-
    ``eval_steps`` at ``eps`` (random starts seeded by ``seed``).

    Args:
        load_standard: a fresh copy of the standard classifier on ``device`` per call
            (called twice: the reference, then the copy to fine-tune).
        data: train batches (train split) and the monitored split.
        eval_set: the evaluation batches, images (b, 3, H, W) in [0, 1] and labels (b,).
        optimizer: :func:`advinterp.models.training.make_optimizer` keyword arguments.
    """
    key = model_key(eps)
    standard = load_standard()
    clean_standard = accuracy(standard, eval_set, device)
    log.info("%s: PGD-%d adversarial training at eps %g", key, steps, eps)
    rng = np.random.default_rng([seed, 0])
    generator = torch.Generator().manual_seed(seed + 1000)
    model = load_standard()
    records = fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=make_optimizer(model, **optimizer),
        device=device,
        generator=generator,
        augment=augment,
        loss_fn=adversarial_loss(
            eps=eps, alpha=alpha, steps=steps, step_size=step_size, generator=generator
        ),
    )
    scores = {
        "train_eps": eps,
        "clean_accuracy": accuracy(model, eval_set, device),
        "adv_accuracy": robust_accuracy(
            model, eval_set, eps=eps, steps=eval_steps, device=device, seed=seed
        ),
        "standard_clean_accuracy": clean_standard,
        "standard_adv_accuracy": robust_accuracy(
            standard, eval_set, eps=eps, steps=eval_steps, device=device, seed=seed
        ),
    }
    log.info(
        "%s: clean %.3f, PGD-%d %.3f (standard model: clean %.3f, PGD %.3f)",
        key,
        scores["clean_accuracy"],
        eval_steps,
        scores["adv_accuracy"],
        clean_standard,
        scores["standard_adv_accuracy"],
    )
    history = [{"model": key, "train_eps": eps, **r} for r in records]
    return RobustModel(key, model, history, scores)
