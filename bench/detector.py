"""``detector``: the attribute Faster R-CNN beside the bare passes of its backbone.

Reported, not judged: a detector adds the RPN, RoI pooling, the box and attribute
heads and NMS to its backbone, so the ratio says how much of its time is the
backbone (the part a larger backbone, e.g. ResNet-50 on GPU, makes dominant).
Inference is :func:`~advinterp.detection.attribute_rcnn.detect` as the ``detect``
stage runs it; training is one step of the ``train_detector`` loss and update.
The detector is the embedded default's (params.yaml ``train_detector.model``).
"""

from __future__ import annotations

import numpy as np
import torch

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.synthetic import generate
from advinterp.detection.attribute_rcnn import DetectorSpec, build_detector, detect, part_targets
from advinterp.detection.training import detector_optimizer
from bench.rows import Row, interleaved_best, throughput_row


def run(batch: int = 16, size: int = 64) -> list[Row]:
    torch.manual_seed(0)
    ds = generate(
        SyntheticConfig(num_classes=4, images_per_class=batch // 4, families=2), size, seed=0
    )
    index = ds.index
    spec = DetectorSpec(
        num_classes=len(index.part_names),
        num_attributes=len(index.attribute_names),
        image_size=size,
    )
    model = build_detector(spec)
    x = torch.from_numpy(ds.load(range(batch)))
    b = index.boxes
    targets = [
        part_targets(b.xyxy[b.of(i)], b.part[b.of(i)], b.attributes[b.of(i)], (size, size))
        for i in range(batch)
    ]
    optimizer = detector_optimizer(model, 1e-4, 0.9, 0.0, 1.0)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)

    def train_step() -> None:
        model.train()
        loss = sum(model(list(x), targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def backbone_train() -> None:
        model.train()
        model.backbone((x - mean) / std).square().mean().backward()
        model.zero_grad(set_to_none=True)

    @torch.no_grad()
    def backbone_forward() -> None:
        model.eval()
        model.backbone((x - mean) / std)

    best = interleaved_best(
        {
            "detect": lambda: detect(model, np.asarray(x), batch_size=batch),
            "backbone_forward": backbone_forward,
            "train": train_step,
            "backbone_train": backbone_train,
        },
        repeat=5,
    )
    note = f"batch {batch}, {size}px, backbone {spec.backbone} {list(spec.channels)}"
    pairs = {  # key in best: (stage, its backbone-only peer, that peer's key)
        "detect": ("detect (Faster R-CNN inference)", "bare backbone forward", "backbone_forward"),
        "train": ("train_detector (one step)", "bare backbone forward+backward", "backbone_train"),
    }
    return [
        throughput_row(
            stage,
            f"{peer}, same batch",
            "throughput ratio (detector/backbone)",
            best[key],
            best[peer_key],
            None,
            note=f"{note}; detector {batch / best[key]:.0f} img/s",
        )
        for key, (stage, peer, peer_key) in pairs.items()
    ]
