"""The LAN g of f1 on a dataset: fit on the train split, masks of every image, checks.

Nguyen et al.'s attention model g (their Fig. 2) is a Latent Attention Network (Grimm et
al. Eq. 3, :mod:`advinterp.explainers.lan`) fitted to f1 on the training images. This
module runs that fit from a dataset store, writes g's mask of every dataset row (train
and test: f2 trains on the first, detection reads the second) and measures the result:
the mean test mask and how often f1 keeps its decision on a test image corrupted by its
own mask (Grimm et al. Eq. 2). It also draws the Figure 1 analogue of Nguyen et al.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
from matplotlib.figure import Figure

from advinterp.config.lan_train import LanTrainConfig
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex
from advinterp.explainers.lan import (
    LanNet,
    attention_masks,
    build_lan,
    corrupted_agreement,
    train_lan,
)
from advinterp.explainers.lan_figures import mask_grid_figure
from advinterp.models.classifier import ImageClassifier
from advinterp.models.features import features_and_logits
from advinterp.models.training import SHUFFLE_BUFFER
from advinterp.store import create_array, fill_shards, sample_chunk_size

log = logging.getLogger(__name__)

EVAL_BATCH = 128
MASK_ATTRS = {
    "range": [0.0, 1.0],
    "meaning": "LAN keep mask g(x): 1 = important to f1, 0 = replaceable by noise",
    "index": "dataset row",
}


@dataclass
class LanTraining:
    """What :func:`lan_training` returns.

    Attributes:
        lan: the fitted g, in eval mode.
        history: one record per epoch (objective, output loss, mean mask).
        metrics: Eq. 3's objective at the first and last epoch, the last output term
            and mean train mask, the mean test mask and f1's agreement on corrupted
            test images.
        figure: the Figure 1 analogue (first test image of each of the first classes
            over its mask).
    """

    lan: LanNet
    history: list[dict[str, float]]
    metrics: dict[str, float]
    figure: Figure


def lan_training(
    f1: ImageClassifier,
    images: Any,
    index: AttributeIndex,
    cfg: LanTrainConfig,
    masks_group: zarr.Group,
    *,
    seed: int,
    device: torch.device,
) -> LanTraining:
    """Fit g for f1 (Grimm et al. Eq. 3) and write every row's mask into ``masks_group``.

    The training shuffle and the noise of Eq. 2 draw from ``seed``, the corrupted
    agreement check from ``seed + 1``; g's initial weights from torch's global RNG.

    Shape:
        images: (N, C, H, W) float32 in [0, 1], one per dataset row (a zarr array).
        writes ``masks_group["masks"]``: (N, C, H, W) float32 in [0, 1].
    """
    chunk = sample_chunk_size(images)
    n = images.shape[0]
    lan = build_lan(cfg.arch, images.shape[1:], cfg.hidden).to(device)
    train_rows = np.flatnonzero(index.split == TRAIN)
    test_rows = np.flatnonzero(index.split == TEST)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    # f1's clean logits once, instead of one extra forward pass per LAN step.
    clean_logits = np.zeros((n, f1.num_classes), np.float32)
    for idx, x in iter_batches(images, train_rows, EVAL_BATCH, chunk):
        clean_logits[idx] = features_and_logits(f1, x, EVAL_BATCH, device)[1]
    history = train_lan(
        lan,
        f1,
        lambda epoch: (
            (x, clean_logits[idx])
            for idx, x in iter_shuffled_batches(
                images, train_rows, cfg.batch_size, chunk, SHUFFLE_BUFFER, rng
            )
        ),
        epochs=cfg.epochs,
        steps_per_epoch=math.ceil(len(train_rows) / cfg.batch_size),
        lr=cfg.lr,
        beta=cfg.beta,
        noise=cfg.noise,
        generator=generator,
        device=device,
        output_loss=cfg.output_loss,
        constant=cfg.noise_constant,
    )

    masks = create_array(
        masks_group,
        "masks",
        tuple(images.shape),
        "float32",
        dims=("sample", "channel", "y", "x"),
        chunk_size=chunk,
        attrs=MASK_ATTRS,
    )
    fill_shards(
        {"masks": masks},
        lambda sl: {"masks": attention_masks(lan, images[sl], EVAL_BATCH, device)},
        n,
        chunk,
        desc="masks",
    )
    test_masks = np.asarray(masks.get_orthogonal_selection((test_rows,)))
    test_images = np.asarray(images.get_orthogonal_selection((test_rows,)))
    agreement = corrupted_agreement(
        lan,
        f1,
        test_images,
        cfg.noise,
        torch.Generator().manual_seed(seed + 1),
        EVAL_BATCH,
        device,
        cfg.noise_constant,
    )
    metrics = {
        "objective_first_epoch": history[0]["objective"],
        "objective_last_epoch": history[-1]["objective"],
        "output_loss_last_epoch": history[-1]["output_loss"],
        "mean_mask_train_last_epoch": history[-1]["mean_mask"],
        "mean_mask_test": float(test_masks.mean()),
        "f1_agreement_corrupted_test": agreement,
    }
    log.info(
        "LAN: mean test mask %.3f, f1 keeps its decision on %.3f of corrupted test images",
        metrics["mean_mask_test"],
        agreement,
    )
    labels = index.labels[test_rows]
    picks = first_of_each_class(labels, cfg.figure_classes)
    figure = mask_grid_figure(
        test_images[picks],
        test_masks[picks],
        [index.class_names[int(labels[i])] for i in picks],
        dpi=cfg.figure.dpi,
    )
    return LanTraining(lan, history, metrics, figure)


def first_of_each_class(labels: np.ndarray, classes: int) -> list[int]:
    """Position of the first image of each of the ``classes`` lowest classes present.

    Shape:
        labels: (N,) int -> at most ``classes`` positions into ``labels``, by class.
    """
    return [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)[:classes]]
