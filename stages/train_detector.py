"""Stage ``train_detector``: Faster R-CNN with an attribute head on part boxes (Eq. 7).

Trains on the train split's part boxes (object class = part, per-box attribute
labels) or loads a local checkpoint; scores AP/recall per part at an IoU threshold
on a test subset.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config.attributes import TrainDetectorConfig
from advinterp.config.core import load
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN, stratified_subset
from advinterp.detection.attribute_rcnn import (
    Detections,
    DetectorSpec,
    build_detector,
    detect,
    load_detector,
    part_targets,
    save_detector,
)
from advinterp.detection.evaluation import evaluate_detections
from advinterp.detection.training import detector_optimizer, fit_detector
from advinterp.errors import CheckpointError, DatasetError
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.train_detector")
SHUFFLE_BUFFER = 4096


def _num(x: float) -> float | None:
    """JSON-safe number: NaN (no ground truth) becomes null."""
    return None if x is None or math.isnan(x) else float(x)


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="detector checkpoint to write")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch loss CSV")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(TrainDetectorConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    if index.boxes is None or not index.part_names:
        raise DatasetError(f"{args.dataset}: no part boxes; the attribute detector needs them")
    boxes = index.boxes
    images = group["images"]
    chunk = sample_chunk_size(images)
    size = (int(images.shape[2]), int(images.shape[3]))
    arch = cfg.model.model_dump()
    arch["image_size"] = arch["image_size"] or max(size)
    spec = DetectorSpec(
        num_classes=len(index.part_names),
        num_attributes=len(index.attribute_names),
        class_names=tuple(index.part_names),
        attribute_names=tuple(index.attribute_names),
        **arch,
    )
    if cfg.weights is not None:
        model = load_detector(cfg.weights, device)
        if (model.spec.num_classes, model.spec.num_attributes) != (
            spec.num_classes,
            spec.num_attributes,
        ):
            raise CheckpointError(
                f"{cfg.weights}: detector for {model.spec.num_classes} parts and "
                f"{model.spec.num_attributes} attributes; the dataset has "
                f"{spec.num_classes} and {spec.num_attributes}"
            )
        log.info("loaded detector %s", cfg.weights)
    else:
        model = build_detector(spec).to(device)

    train_rows = np.flatnonzero(index.split == TRAIN)
    if cfg.max_train_images is not None:
        keep = stratified_subset(index.labels[train_rows], cfg.max_train_images, base.seed)
        train_rows = train_rows[keep]
    targets = {
        int(i): part_targets(
            boxes.xyxy[boxes.of(i)], boxes.part[boxes.of(i)], boxes.attributes[boxes.of(i)], size
        )
        for i in train_rows
    }
    rng = np.random.default_rng(base.seed)

    def train_batches(epoch: int):
        del epoch
        for idx, x in iter_shuffled_batches(
            images, train_rows, cfg.batch_size, chunk, SHUFFLE_BUFFER, rng
        ):
            yield x, [targets[int(i)] for i in idx]

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
            generator=torch.Generator().manual_seed(base.seed),
            flip=cfg.flip,
        )
    train_seconds = time.perf_counter() - start

    test_rows = np.flatnonzero(index.split == TEST)
    if cfg.eval_images is not None:
        test_rows = test_rows[
            stratified_subset(index.labels[test_rows], cfg.eval_images, base.seed)
        ]
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
    metrics = {
        "mAP": _num(scores.mean_ap),
        "mean_recall": _num(scores.mean_recall),
        "ap": {p: _num(v) for p, v in zip(index.part_names, scores.ap, strict=True)},
        "recall": {p: _num(v) for p, v in zip(index.part_names, scores.recall, strict=True)},
        "attribute_precision": _num(scores.attribute_precision),
        "attribute_recall": _num(scores.attribute_recall),
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
    save_detector(args.model, model, params=cfg.model_dump(mode="json"), seed=base.seed)
    with atomic_output(args.history) as tmp:
        cols = ["epoch", "loss"]
        pd.DataFrame(history, columns=list(history[0]) if history else cols).to_csv(
            tmp, index=False
        )
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
