"""Max vs average pooling under adversarial training (Zheng et al. Sec. 5.2, Tables 2-3).

The robust pooling CNN of ``igan_train`` is one arm; its twin with the other pooling
kind is trained by the same call (same ``igan_train.classifier`` and
``igan_train.adversarial`` recipe, same seed: identical initial weights, batches and
PGD random starts; the pooling modules are the only difference). Both are scored on
the same images: clean, PGD with two step counts, momentum PGD and FGSM, all at one
L-inf eps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import torch

from advinterp.analysis.robustness import Attack, robust_accuracies
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.ifgsm import default_step_size
from advinterp.attacks.mifgsm import mifgsm
from advinterp.attacks.pgd import pgd
from advinterp.config.igan_train import IganTrainConfig
from advinterp.config.pooling_study import PoolingStudyConfig
from advinterp.data.dataset import AttributeIndex
from advinterp.errors import CheckpointError
from advinterp.models.classifier import ImageClassifier
from advinterp.models.pooling_cnn import (
    Pooling,
    architecture_of,
    recipe_architecture,
    train_classifier,
)

log = logging.getLogger(__name__)

OTHER: dict[str, Pooling] = {"max": "avg", "avg": "max"}
"""The twin's pooling kind for the robust model's."""


def train_twin(
    robust: ImageClassifier,
    recipe: IganTrainConfig,
    images: Any,
    index: AttributeIndex,
    *,
    chunk_size: int,
    seed: int,
    device: torch.device,
    origin: str,
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """The robust model's twin: the other pooling kind, trained by ``recipe`` (robust)
    with ``robust``'s normalisation and the same seed.

    Raises:
        CheckpointError: naming ``origin`` when ``robust`` was not built by
            ``recipe.classifier`` (then the twins would differ in more than pooling).
    """
    arch = architecture_of(robust)
    expected = recipe_architecture(recipe.classifier)
    if arch != expected:
        raise CheckpointError(
            f"{origin}: architecture {arch} is not igan_train.classifier {expected}"
        )
    twin_kind = OTHER[arch["pooling"]]
    log.info("training the %s-pooling twin of %s", twin_kind, origin)
    return train_classifier(
        recipe,
        twin_kind,
        {k: v for k, v in arch.items() if k != "pooling"},
        images,
        index.labels,
        index.split,
        len(index.class_names),
        mean=robust.mean.flatten().tolist(),
        std=robust.std.flatten().tolist(),
        chunk_size=chunk_size,
        robust=True,
        seed=seed,
        device=device,
    )


def study_attacks(cfg: PoolingStudyConfig, seed: int) -> dict[str, Attack]:
    """PGD with both step counts, momentum PGD and FGSM at ``cfg.eps``; every random
    start from a fresh generator seeded with ``seed`` (so both arms see the same)."""
    s1, s2 = cfg.pgd_steps

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    return {
        f"pgd{s1}": partial(pgd, eps=cfg.eps, steps=s1, generator=gen()),
        f"pgd{s2}": partial(pgd, eps=cfg.eps, steps=s2, generator=gen()),
        # Momentum PGD: random start and PGD's step size, plus the velocity.
        f"mpgd{cfg.mpgd_steps}": partial(
            mifgsm,
            eps=cfg.eps,
            steps=cfg.mpgd_steps,
            step_size=default_step_size(cfg.eps, cfg.mpgd_steps),
            decay=cfg.mpgd_decay,
            random_start=True,
            generator=gen(),
        ),
        "fgsm": partial(fgsm, eps=cfg.eps),
    }


@dataclass
class PoolingStudy:
    """Tables 2-3: ``metrics`` (accuracies per pooling kind and their difference) and
    ``table`` (one row per pooling kind, max first; one column per attack)."""

    metrics: dict[str, Any]
    table: pd.DataFrame


def compare_pooling(
    models: Mapping[str, ImageClassifier],
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: PoolingStudyConfig,
    seed: int,
    *,
    twin_val_accuracy: float,
) -> PoolingStudy:
    """Clean and robust accuracy of the ``max`` and the ``avg`` model (scored in the
    order of ``models``), each under freshly seeded :func:`study_attacks`.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64, on the models' device.
    """
    results = {}
    for kind, model in models.items():
        results[kind] = robust_accuracies(model, x, y, study_attacks(cfg, seed), cfg.batch_size)
        log.info("%s pooling: %s", kind, {k: round(v, 3) for k, v in results[kind].items()})
    columns = list(results["max"])
    metrics = {
        "images": len(x),
        "eps": cfg.eps,
        "max": results["max"],
        "avg": results["avg"],
        "avg_minus_max": {k: results["avg"][k] - results["max"][k] for k in columns},
        "twin_val_accuracy": twin_val_accuracy,
    }
    table = pd.DataFrame([{"pooling": k, **results[k]} for k in ("max", "avg")])
    return PoolingStudy(metrics=metrics, table=table)
