"""Structured joint embedding (Akata et al. 2015), as Gulshad et al. use it (Sec. 3.2).

* Eq. 3, compatibility: ``F(x, y; W) = θ(x)ᵀ W φ(y)``, W of shape (D, E), E = attributes.
* Eqs. 4-5, ranking loss: ``max_y {0, Δ(y_n, y) + F(x_n, y) - F(x_n, y_n)}`` with the
  0/1 loss Δ (``margin`` for a wrong class, 0 for the true one). The paper prints Eq. 5
  with the two F terms swapped; as written it would push the true class *down*, so the
  SJE paper's sign is used here.
* Eq. 6, SGD: for the most violating class ``y* = argmax_y Δ(y_n, y) + F(x_n, y)``, if
  ``y* != y_n``: ``W <- W + η θ(x_n) [φ(y_n) - φ(y*)]ᵀ``.
* Predicted attributes are ``θ(x) W``; the class is that of the nearest class embedding.
  With unit-norm φ rows, nearest (Euclidean or cosine) is ``argmax_y F(x, y)``.

:func:`fit_sje` applies Eq. 6 to mini-batches in one matrix product (the mean of the
per-sample updates); :func:`fit_sje_reference` is the textbook per-sample loop. Both use
:func:`most_violated` for the loss, and with ``batch_size=1`` they take identical steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

log = logging.getLogger(__name__)

FeatureNorm = Literal["none", "l2"]


def class_embeddings(class_attributes: np.ndarray | torch.Tensor, center: bool) -> torch.Tensor:
    """φ(y): class-attribute rows, optionally mean-centred over classes, l2-normalised.

    Shape:
        class_attributes: (C, A) float, e.g. CUB percentages / 100 in [0, 1].
        returns: (C, A) float32, unit rows (all-zero rows stay zero).
    """
    phi = torch.as_tensor(np.asarray(class_attributes), dtype=torch.float32)
    if center:
        phi = phi - phi.mean(0, keepdim=True)
    return phi / phi.norm(dim=1, keepdim=True).clamp_min(1e-12)


def normalise_features(features: np.ndarray | torch.Tensor, kind: FeatureNorm) -> torch.Tensor:
    """θ(x) as SJE sees it: unchanged, or scaled to unit l2 norm per sample.

    Shape:
        features: (N, D) float -> (N, D) float32.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    if kind == "l2":
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x


def compatibility(x: torch.Tensor, W: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Eq. 3 for every (sample, class): ``θ(x)ᵀ W φ(y)``.

    Shape:
        x: (N, D); W: (D, A); phi: (C, A). returns: (N, C).
    """
    return (x @ W) @ phi.T


def most_violated(
    scores: torch.Tensor, labels: torch.Tensor, margin: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 4-5: the hinge ranking loss and the most violating class per sample.

    ``y* = argmax_y Δ(y_n, y) + F(x_n, y)``;
    ``loss_n = max(0, Δ(y_n, y*) + F(x_n, y*) - F(x_n, y_n))``; since Δ(y_n, y_n) = 0 the
    inner maximum is never below 0, so ``loss_n > 0`` exactly when ``y* != y_n``.

    Shape:
        scores: (N, C) compatibilities; labels: (N,) int64.
        returns: loss (N,) float >= 0, y* (N,) int64.
    """
    true_score = scores.gather(1, labels.view(-1, 1))
    # Δ + F: the margin everywhere but at the true class, which keeps its own score, so
    # the row maximum is never below it and the loss needs no clamp.
    augmented = (scores + margin).scatter_(1, labels.view(-1, 1), true_score)
    worst_score, worst = augmented.max(1)
    return worst_score - true_score.squeeze(1), worst


def sje_step(
    W: torch.Tensor,
    x: torch.Tensor,
    labels: torch.Tensor,
    phi: torch.Tensor,
    lr: float,
    margin: float = 1.0,
) -> torch.Tensor:
    """One Eq. 6 update on a mini-batch (in place), the mean of the per-sample updates.

    ``W += η/B Σ_n [y*_n != y_n] θ(x_n) (φ(y_n) - φ(y*_n))ᵀ``.

    Shape:
        W: (D, A) float32, updated in place; x: (B, D); labels: (B,); phi: (C, A).
        returns: the batch's loss (B,).
    """
    # No violation mask: where y* = y_n the difference φ(y_n) - φ(y*) is already zero.
    loss, worst = most_violated(compatibility(x, W, phi), labels, margin)
    W.add_(x.T @ (phi[labels] - phi[worst]), alpha=lr / len(labels))
    return loss


def predict_attributes(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """θ(x) W: the attribute vector SJE predicts for each image.

    Shape:
        x: (N, D); W: (D, A). returns: (N, A) float32.
    """
    return x @ W


def predict_classes(x: torch.Tensor, W: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """The class of the nearest unit-norm class embedding = ``argmax_y F(x, y)``.

    Shape:
        x: (N, D); W: (D, A); phi: (C, A). returns: (N,) int64.
    """
    return compatibility(x, W, phi).argmax(1)


def sje_accuracy(
    x: torch.Tensor, labels: torch.Tensor, W: torch.Tensor, phi: torch.Tensor
) -> float:
    """Top-1 accuracy of SJE's nearest-embedding classification."""
    if len(labels) == 0:
        return float("nan")
    return float((predict_classes(x, W, phi) == labels).float().mean())


@dataclass
class SJEFit:
    """A fitted SJE: the best W on validation and the per-epoch record."""

    W: torch.Tensor
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def _train(
    epoch_step: Step,
    x: torch.Tensor,
    labels: torch.Tensor,
    phi: torch.Tensor,
    val_x: torch.Tensor,
    val_labels: torch.Tensor,
    epochs: int,
    patience: int,
    generator: torch.Generator,
) -> SJEFit:
    """Epoch loop with early stopping on validation accuracy (W starts at zero).

    ``epoch_step(W, x, labels, generator)`` updates W in place for one epoch and returns
    its mean loss; the fitters differ only in that step.
    """
    W = torch.zeros(x.shape[1], phi.shape[1], dtype=torch.float32)
    best = SJEFit(W.clone(), 0, -1.0)
    stale = 0
    for epoch in range(1, epochs + 1):
        loss = epoch_step(W, x, labels, generator)
        val = sje_accuracy(val_x, val_labels, W, phi)
        best.history.append({"epoch": epoch, "loss": float(loss), "val_accuracy": val})
        if val > best.best_val_accuracy:
            best.W, best.best_epoch, best.best_val_accuracy, stale = W.clone(), epoch, val, 0
        else:
            stale += 1
            if stale >= patience:
                log.info("SJE: early stop at epoch %d (best %d)", epoch, best.best_epoch)
                break
    return best


def fit_sje(
    x: torch.Tensor,
    labels: torch.Tensor,
    phi: torch.Tensor,
    *,
    val_x: torch.Tensor,
    val_labels: torch.Tensor,
    lr: float,
    epochs: int,
    batch_size: int,
    patience: int,
    margin: float = 1.0,
    generator: torch.Generator,
) -> SJEFit:
    """Learn W by mini-batch Eq. 6 SGD, keeping the epoch best on validation.

    Shape:
        x: (N, D) float32 normalised features; labels: (N,) int64; phi: (C, A) float32.
        val_x: (M, D); val_labels: (M,).
    """

    def epoch_step(W, x, labels, g):
        order = torch.randperm(len(labels), generator=g)
        # One gather per epoch, then contiguous views: at the embedded size a step is a
        # handful of tiny ops, and per-batch indexing would be a sizeable share of them.
        xs, ys = x[order], labels[order]
        losses = [
            sje_step(W, xs[s : s + batch_size], ys[s : s + batch_size], phi, lr, margin)
            for s in range(0, len(order), batch_size)
        ]
        return torch.cat(losses).sum() / max(len(labels), 1) if losses else torch.zeros(())

    return _train(epoch_step, x, labels, phi, val_x, val_labels, epochs, patience, generator)


def fit_sje_reference(
    x: torch.Tensor,
    labels: torch.Tensor,
    phi: torch.Tensor,
    *,
    val_x: torch.Tensor,
    val_labels: torch.Tensor,
    lr: float,
    epochs: int,
    patience: int,
    margin: float = 1.0,
    generator: torch.Generator,
) -> SJEFit:
    """Textbook SJE: one Eq. 6 update per sampled image, in a Python loop.

    The baseline :func:`fit_sje` is benchmarked against; same loss, same sample order.
    """

    def epoch_step(W, x, labels, g):
        order = torch.randperm(len(labels), generator=g)
        total = 0.0
        for n in order.tolist():
            theta = x[n]
            scores = (theta @ W) @ phi.T
            loss, worst = most_violated(scores.unsqueeze(0), labels[n : n + 1], margin)
            total += float(loss)
            y_star, y_n = int(worst), int(labels[n])
            if y_star != y_n:
                W += lr * torch.outer(theta, phi[y_n] - phi[y_star])
        return torch.tensor(total / max(len(labels), 1))

    return _train(epoch_step, x, labels, phi, val_x, val_labels, epochs, patience, generator)
