"""The attribute detector of Gulshad et al. Eq. 7: train on part boxes, score on test images.

The detector (:mod:`advinterp.detection.attribute_rcnn`) learns parts as object classes
and the dataset's attribute vocabulary per box from the train split's part boxes (or
starts from a local checkpoint), then is scored on a class-stratified test subset: AP
and recall per part at an IoU threshold, precision/recall of the attributes of the
boxes it finds (:mod:`advinterp.detection.evaluation`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from advinterp.config.train_detector import DetectorModelConfig, TrainDetectorConfig
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex, split_rows
from advinterp.detection.attribute_rcnn import (
    AttributeFasterRCNN,
    Detections,
    DetectorSpec,
    build_detector,
    detect,
    load_detector,
    part_targets,
)
from advinterp.detection.evaluation import evaluate_detections, json_number
from advinterp.detection.training import DetectionBatches, detector_optimizer, fit_detector
from advinterp.errors import CheckpointError, DatasetError
from advinterp.store import sample_chunk_size

log = logging.getLogger(__name__)

# Shuffle buffer of the detector's training batches (images; their box targets stay in
# memory beside them).
SHUFFLE_BUFFER = 4096
HISTORY_COLUMNS = ("epoch", "loss")  # header of an empty history (no training epochs)


@dataclass(frozen=True)
class DetectorRun:
    """A trained (or loaded) detector, its training curve and its test scores.

    Attributes:
        model: the detector, in eval mode.
        history: one row per epoch (``epoch``, ``loss``, each loss term, ``lr``).
        metrics: JSON-ready scores (NaN, i.e. no ground truth, as None).
    """

    model: AttributeFasterRCNN
    history: pd.DataFrame
    metrics: dict[str, Any]


def detector_spec(
    index: AttributeIndex, image_hw: tuple[int, int], arch: DetectorModelConfig
) -> DetectorSpec:
    """The detector for ``index``'s parts and attributes; ``image_size`` null = max(H, W)."""
    params = arch.model_dump()
    params["image_size"] = params["image_size"] or max(image_hw)
    return DetectorSpec(
        num_classes=len(index.part_names),
        num_attributes=len(index.attribute_names),
        class_names=tuple(index.part_names),
        attribute_names=tuple(index.attribute_names),
        **params,
    )


def initial_detector(
    spec: DetectorSpec, weights: Path | None, device: torch.device
) -> AttributeFasterRCNN:
    """A fresh detector of ``spec`` (seeded by the caller), or the checkpoint ``weights``.

    Raises:
        CheckpointError: ``weights`` is unreadable or was made for another number of
            parts or attributes.
    """
    if weights is None:
        return build_detector(spec).to(device)
    model = load_detector(weights, device)
    if (model.spec.num_classes, model.spec.num_attributes) != (
        spec.num_classes,
        spec.num_attributes,
    ):
        raise CheckpointError(
            f"{weights}: detector for {model.spec.num_classes} parts and "
            f"{model.spec.num_attributes} attributes; the dataset has "
            f"{spec.num_classes} and {spec.num_attributes}"
        )
    log.info("loaded detector %s", weights)
    return model


def train_and_score(
    images: Any,
    index: AttributeIndex,
    cfg: TrainDetectorConfig,
    seed: int,
    device: torch.device,
    origin: str = "dataset",
) -> DetectorRun:
    """Train the attribute detector on the train split's part boxes; score it on test images.

    Args:
        images: (N, 3, H, W) float32 in [0, 1], a zarr array (read shard by shard).
        index: the dataset's index; needs part boxes.
        seed: draws the training subset, the shuffle, the flips and the test subset
            (the caller seeds torch for the initial weights).
        origin: names the dataset in errors.

    Raises:
        DatasetError: the dataset has no part boxes.
    """
    if index.boxes is None or not index.part_names:
        raise DatasetError(f"{origin}: no part boxes; the attribute detector needs them")
    boxes = index.boxes
    chunk = sample_chunk_size(images)
    size = (int(images.shape[2]), int(images.shape[3]))
    spec = detector_spec(index, size, cfg.model)
    model = initial_detector(spec, cfg.weights, device)

    train_rows = split_rows(index, TRAIN, cfg.max_train_images, seed)
    targets = {
        int(i): part_targets(
            boxes.xyxy[boxes.of(i)], boxes.part[boxes.of(i)], boxes.attributes[boxes.of(i)], size
        )
        for i in train_rows
    }
    rng = np.random.default_rng(seed)

    def train_batches(epoch: int) -> DetectionBatches:
        del epoch  # one stream: the shuffle buffer draws from rng epoch after epoch
        return _batches(images, train_rows, targets, cfg.batch_size, chunk, rng)

    start = time.perf_counter()
    history: list[dict[str, float]] = []
    if cfg.epochs > 0:
        optimizer = detector_optimizer(
            model, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.attribute_lr_scale
        )
        history = fit_detector(
            model,
            train_batches,
            epochs=cfg.epochs,
            steps_per_epoch=math.ceil(len(train_rows) / cfg.batch_size),
            optimizer=optimizer,
            device=device,
            generator=torch.Generator().manual_seed(seed),
            flip=cfg.flip,
        )
    train_seconds = time.perf_counter() - start

    test_rows = split_rows(index, TEST, cfg.eval_images, seed)
    parts = [
        detect(model, x, cfg.batch_size, device)
        for _, x in iter_batches(images, test_rows, cfg.batch_size, chunk)
    ]
    det = Detections.concat(parts, spec.num_attributes)
    gt = boxes.subset(test_rows)
    scores = evaluate_detections(
        det,
        gt.offsets,
        gt.xyxy,
        gt.part,
        gt.attributes,
        spec.num_classes,
        cfg.iou_thresh,
        cfg.attribute_thresh,
    )
    names = index.part_names
    metrics = {
        "mAP": json_number(scores.mean_ap),
        "mean_recall": json_number(scores.mean_recall),
        "ap": {p: json_number(v) for p, v in zip(names, scores.ap, strict=True)},
        "recall": {p: json_number(v) for p, v in zip(names, scores.recall, strict=True)},
        "attribute_precision": json_number(scores.attribute_precision),
        "attribute_recall": json_number(scores.attribute_recall),
        "iou_thresh": cfg.iou_thresh,
        "train_images": len(train_rows),
        "eval_images": len(test_rows),
        "detections_per_image": float(np.mean(np.diff(det.offsets))) if len(test_rows) else 0.0,
        "epochs": cfg.epochs,
        "final_loss": history[-1]["loss"] if history else None,
        "train_seconds": train_seconds,
    }
    log.info(
        "detector: mAP@%.2f %.3f, mean recall %.3f on %d test images (trained %.0fs)",
        cfg.iou_thresh,
        scores.mean_ap,
        scores.mean_recall,
        len(test_rows),
        train_seconds,
    )
    model.eval()
    columns = list(history[0]) if history else list(HISTORY_COLUMNS)
    return DetectorRun(model, pd.DataFrame(history, columns=columns), metrics)


def _batches(
    images: Any,
    rows: np.ndarray,
    targets: dict[int, dict[str, torch.Tensor]],
    batch_size: int,
    chunk: int,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, list[dict[str, torch.Tensor]]]]:
    """Shuffled training batches of ``images[rows]`` with their part-box targets."""
    for idx, x in iter_shuffled_batches(images, rows, batch_size, chunk, SHUFFLE_BUFFER, rng):
        yield x, [targets[int(i)] for i in idx]
