"""``adv_train``: a PGD adversarial-training epoch against a plain training epoch.

Floor: a plain epoch costs one training pass (forward + backward + update) per batch.
Training on the adversarial loss alone (α = 0) adds s PGD passes (forward + backward
to the input, parameters frozen; cheaper than a training pass), so it should cost at
most (s + 1) plain epochs. Eq. 2 as the stage runs it (α = 0.5) trains on the clean
and the adversarial batch, two training passes, so its bound is (s + 2) plain epochs.
All run through the same :func:`advinterp.models.training.fit` on the same batches
(augmentation and validation off, so only the passes are timed).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from advinterp.models.adversarial_training import adversarial_loss
from advinterp.models.classifier import build_classifier
from advinterp.models.training import fit, make_optimizer
from bench.rows import Row


def run(
    batches: int = 6, batch: int = 64, size: int = 64, steps: int = 3, eps: float = 0.02
) -> list[Row]:
    rng = np.random.default_rng(0)
    data = [
        (rng.random((batch, 3, size, size), dtype=np.float32), rng.integers(0, 20, batch))
        for _ in range(batches)
    ]
    model = build_classifier("tiny_resnet", 20, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def epoch(loss_fn) -> float:
        start = time.perf_counter()
        fit(
            model,
            lambda _epoch: data,
            lambda: [],
            epochs=1,
            steps_per_epoch=batches,
            optimizer=make_optimizer(model, "sgd", 0.01, 0.9, 0.0),
            device=torch.device("cpu"),
            generator=torch.Generator().manual_seed(0),
            augment=False,
            loss_fn=loss_fn,
        )
        return time.perf_counter() - start

    at = {
        alpha: adversarial_loss(eps=eps, alpha=alpha, steps=steps, generator=torch.Generator())
        for alpha in (0.0, 0.5)
    }
    epoch(None)  # warm-up
    best = {"plain": float("inf"), 0.0: float("inf"), 0.5: float("inf")}
    for _ in range(5):  # interleaved, so machine noise hits all alike
        best["plain"] = min(best["plain"], epoch(None))
        for alpha, loss_fn in at.items():
            best[alpha] = min(best[alpha], epoch(loss_fn))
    plain = best["plain"]
    common = f"{batches} batches of {batch} at {size}px, tiny_resnet, PGD-{steps}; plain epoch {plain:.2f} s"
    variants = {  # alpha: (stage label, training passes per batch besides PGD, note tail)
        0.0: ("α = 0", 1, ""),
        0.5: ("Eq. 2 α = 0.5", 2, "; clean and adversarial batch are two training passes"),
    }
    return [
        Row(
            f"adv_train (PGD epoch, {label})",
            f"(steps + {k}) x plain training epoch, steps = {steps}",
            f"time ratio (AT / ((steps+{k}) x plain))",
            best[alpha],
            (steps + k) * plain,
            1.15,
            higher_is_better=False,
            note=f"{common}, AT epoch {best[alpha]:.2f} s ({best[alpha] / plain:.2f} plain epochs{tail})",
        )
        for alpha, (label, k, tail) in variants.items()
    ]
