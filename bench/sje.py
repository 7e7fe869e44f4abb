"""``sje``: the mini-batch SJE fit against the textbook per-sample SGD loop.

Both run the Eq. 6 update from W = 0 on the same features for the same number of
epochs (early stopping off), so the time ratio is the price of one epoch and the
accuracies show the vectorised fit learns as well. Features: the embedded default's
shape (1120 training images, 128-d pooled features of ``tiny_resnet``, 20 classes,
65 attributes), drawn from a noisy linear map of the class attributes, so the
benchmark needs no trained model.
"""

from __future__ import annotations

import time

import torch

from advinterp.embedding.sje import (
    class_embeddings,
    fit_sje,
    fit_sje_reference,
    normalise_features,
    sje_accuracy,
)
from bench.rows import Row


def _features(n: int, mix: torch.Tensor, phi: torch.Tensor, g: torch.Generator):
    """θ(x) = φ(y) M + noise, l2-normalised; the noise puts accuracy near the embedded
    default's (0.7-0.8), where the two fits can differ."""
    labels = torch.randint(0, phi.shape[0], (n,), generator=g)
    x = phi[labels] @ mix + 3.5 * torch.randn(n, mix.shape[1], generator=g)
    return normalise_features(x, "l2"), labels


def _compare(
    label: str,
    n_train: int,
    n_eval: int,
    dim: int,
    classes: int,
    attributes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    target: float | None,
    why: str = "",
) -> list[Row]:
    g = torch.Generator().manual_seed(0)
    phi = class_embeddings(torch.rand(classes, attributes, generator=g), center=True)
    mix = torch.randn(attributes, dim, generator=g)
    x, y = _features(n_train, mix, phi, g)
    val_x, val_y = _features(n_eval, mix, phi, g)
    test_x, test_y = _features(n_eval, mix, phi, g)
    common = dict(val_x=val_x, val_labels=val_y, lr=lr, epochs=epochs, patience=epochs + 1)

    def timed(fn, **kw):
        start = time.perf_counter()
        fitted = fn(x, y, phi, generator=torch.Generator().manual_seed(1), **common, **kw)
        return time.perf_counter() - start, sje_accuracy(test_x, test_y, fitted.W, phi)

    timed(fit_sje, batch_size=batch_size)  # warm-up (first-call allocations)
    ours = min((timed(fit_sje, batch_size=batch_size) for _ in range(3)), key=lambda r: r[0])
    ref = timed(fit_sje_reference)  # seconds per run; the minimum of one is enough here
    note = (
        f"{n_train} x {dim}-d features, {classes} classes, {attributes} attributes, "
        f"{epochs} epochs; test accuracy {ours[1]:.3f} (mini-batch {batch_size}) vs "
        f"{ref[1]:.3f} (per sample); {ours[0]:.2f} s vs {ref[0]:.1f} s"
    )
    return [
        Row(
            f"sje (fit), {label}",
            "per-sample SGD loop, same epochs",
            "speed-up (epochs/s ratio ours/ref)",
            1 / ours[0],
            1 / ref[0],
            target,
            higher_is_better=True,
            note=note + why,
        ),
        Row(
            f"sje (fit), {label}",
            "per-sample SGD loop, same epochs",
            "test accuracy ratio (ours/ref)",
            ours[1],
            ref[1],
            0.97,
            higher_is_better=True,
            note="equal within noise: ≥ 0.97 of the reference's accuracy",
        ),
    ]


def run(batch_size: int = 64, lr: float = 10.0) -> list[Row]:
    return [
        *_compare("embedded default", 1120, 480, 128, 20, 65, 20, batch_size, lr, 20.0),
        *_compare(
            "CUB-sized",
            5994,
            1000,
            2048,
            200,
            312,
            3,
            batch_size,
            lr,
            None,
            why=(
                ". Both do the same arithmetic per sample (θᵀW, then a rank-1 update of"
                " the 2048 x 312 W); mini-batches only turn matrix-vector into"
                " matrix-matrix products, so at this size the gain is BLAS efficiency,"
                " not fewer operations (at the embedded size it is per-op overhead)"
            ),
        ),
    ]
