"""Training f2 on LAN masks (Nguyen et al. Sec. 3): the ``mask_classifier`` run.

Nguyen et al. train f2 (:class:`~advinterp.models.mask_classifier.MaskClassifier`) on
the masks g produces for the training images, to predict the image's class; its test
accuracy says how much of the class the masks alone carry (theirs: 60% on CIFAR-10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from advinterp.config.mask_classifier import MaskClassifierConfig
from advinterp.data.dataset import AttributeIndex
from advinterp.models.mask_classifier import MaskClassifier
from advinterp.models.training import fit_on_split, split_metrics


@dataclass
class MaskTraining:
    """What :func:`train_mask_classifier` returns: f2, its per-epoch history, its metrics
    (final train accuracy, val accuracy or None, test accuracy, chance)."""

    model: MaskClassifier
    history: list[dict[str, float]]
    metrics: dict[str, float | None]


def train_mask_classifier(
    masks: Any,
    index: AttributeIndex,
    cfg: MaskClassifierConfig,
    *,
    seed: int,
    device: torch.device,
) -> MaskTraining:
    """Fit f2 on the train split's LAN masks to predict the image class (Nguyen et al. Sec. 3).

    No augmentation: a flipped or shifted mask is not the mask of the flipped image.

    Shape:
        masks: (N, C, H, W) float32 in [0, 1], one per dataset row (a zarr array), in
        the order of ``index.labels`` and ``index.split``.
    """
    model = MaskClassifier(len(index.class_names), masks.shape[1], cfg.dropout).to(device)
    data, history = fit_on_split(
        model, masks, index.labels, index.split, cfg, device=device, seed=seed, augment=False
    )
    scores = {
        **split_metrics(model, data, history, device),
        "chance": 1.0 / len(index.class_names),
    }
    return MaskTraining(model, history, scores)
