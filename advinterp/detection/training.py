"""Training the attribute detector on part boxes with per-box attribute labels.

The loss is torchvision's Faster R-CNN loss (RPN objectness and box regression, box
classification and regression) plus the attribute branch's binary cross-entropy
(:class:`~advinterp.detection.attribute_rcnn.AttributeRoIHeads`), summed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from advinterp.detection.attribute_rcnn import AttributeFasterRCNN
from advinterp.models.training import cosine_lr
from advinterp.progress import track

log = logging.getLogger(__name__)

Targets = list[dict[str, torch.Tensor]]
DetectionBatches = Iterable[tuple[np.ndarray, Targets]]


def hflip(images: torch.Tensor, targets: Targets) -> tuple[torch.Tensor, Targets]:
    """Mirror images and their boxes left-right (attributes are unchanged by a flip).

    Shape:
        images: (N, 3, H, W); targets[i]["boxes"]: (M, 4) pixels xyxy.
    """
    w = images.shape[-1]
    flipped = []
    for t in targets:
        b = t["boxes"]
        flipped.append({**t, "boxes": torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)})
    return images.flip(-1), flipped


def detector_optimizer(
    model: AttributeFasterRCNN,
    lr: float,
    momentum: float,
    weight_decay: float,
    attribute_lr_scale: float = 10.0,
) -> torch.optim.SGD:
    """SGD over the trainable parameters, the attribute head at ``attribute_lr_scale`` x lr.

    Measured on the embedded data (480 images, 5 epochs): at the shared rate the head
    stays near the attribute prior (colour top-1 0.43 within a part), at 10x it learns
    the image (colour 0.70, pattern 0.68, size 0.74); detection AP is unaffected.
    """
    head: list[torch.Tensor] = [
        p for p in model.roi_heads.attribute_predictor.parameters() if p.requires_grad
    ]
    ids = {id(p) for p in head}
    rest: list[torch.Tensor] = [
        p for p in model.parameters() if p.requires_grad and id(p) not in ids
    ]
    groups: list[dict[str, Any]] = [
        {"params": rest},
        {"params": head, "lr": lr * attribute_lr_scale},
    ]
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
    )


def fit_detector(
    model: AttributeFasterRCNN,
    train_batches: Callable[[int], DetectionBatches],
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps_per_epoch: int,
    device: torch.device,
    generator: torch.Generator,
    flip: bool = True,
    warmup_steps: int = 50,
    clip_norm: float = 10.0,
) -> list[dict[str, float]]:
    """Train with linear warm-up then a cosine schedule; log the loss terms per epoch.

    Args:
        train_batches: ``epoch -> iterable of (images (B,3,H,W) [0,1], targets)`` with
            targets as made by :func:`~advinterp.detection.attribute_rcnn.part_targets`.
        flip: random horizontal flips (per batch half of the images).
        clip_norm: gradient-norm clip; detectors trained from scratch spike early.

    Returns:
        One record per epoch: ``epoch``, ``loss`` (mean summed loss per batch), each
        loss term by name, and the learning rate at the end of the epoch.
    """
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    total = max(1, epochs * steps_per_epoch)
    warmup = min(warmup_steps, total // 4)
    step = 0
    history: list[dict[str, float]] = []
    was_training = model.training
    model.train()
    try:
        for epoch in range(epochs):
            sums: dict[str, float] = {}
            batches = 0
            for xb, targets in track(
                train_batches(epoch),
                total=steps_per_epoch,
                desc=f"detector epoch {epoch + 1}/{epochs}",
                unit="batch",
            ):
                cosine_lr(optimizer, base_lrs, step, total, warmup)
                x = torch.as_tensor(xb)
                if flip:
                    mask = torch.rand(len(x), generator=generator) < 0.5
                    fx, ft = hflip(x, targets)
                    x = torch.where(mask.view(-1, 1, 1, 1), fx, x)
                    targets = [f if m else t for f, t, m in zip(ft, targets, mask, strict=True)]
                x = x.to(device)
                targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
                losses = model(list(x), targets)
                loss = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimizer.step()
                step += 1
                batches += 1
                sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            record = {"epoch": epoch + 1, **{k: v / max(batches, 1) for k, v in sums.items()}}
            record["lr"] = optimizer.param_groups[0]["lr"]
            log.info(
                "detector epoch %d/%d: loss %.4f (attributes %.4f)",
                epoch + 1,
                epochs,
                record.get("loss", float("nan")),
                record.get("loss_attributes", float("nan")),
            )
            history.append(record)
    finally:
        model.train(was_training)
    return history
