"""The second architecture of attack-to-explain's cross-model check (Jalwana et al. Sec. 5.1).

Jalwana et al. compare the perturbations of one model with those of another
architecture (Fig. 5): both must see the same pixels, so the second classifier is
trained on the same train split with the standard model's input normalisation.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import zarr

from advinterp.config.a2e_second import A2ESecondConfig
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.models.training import fit_on_split, split_metrics

log = logging.getLogger(__name__)


def train_second_classifier(
    cfg: A2ESecondConfig,
    images: zarr.Array,
    labels: np.ndarray,
    split: np.ndarray,
    standard: ImageClassifier,
    device: torch.device,
    seed: int,
) -> tuple[ImageClassifier, dict[str, float | None]]:
    """Train ``cfg.arch`` on the train split with ``standard``'s mean and std.

    The weights are initialised from torch's global generator: the caller seeds it (the
    stage runner does) and loads ``standard`` first, as the stage always has. ``seed``
    drives the epoch shuffles and the augmentation (:func:`fit_on_split`).

    Shape:
        images: (N, 3, H, W) zarr array in [0, 1]; labels: (N,) int64;
        split: (N,) int8.

    Returns:
        The model in eval mode, and its train (last epoch), val and test accuracy.
    """
    mean, std = standard.mean.flatten().tolist(), standard.std.flatten().tolist()
    model = build_classifier(cfg.arch, standard.num_classes, mean, std)
    model.to(device)
    data, history = fit_on_split(
        model, images, labels, split, cfg, device=device, seed=seed, augment=cfg.augment
    )
    log.info("%s trained: val accuracy %.3f", cfg.arch, history[-1]["val_accuracy"])
    return model.eval(), split_metrics(model, data, history, device)
