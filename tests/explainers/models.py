"""Small classifiers shared by the explainer (and localized-attack) tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.synthetic import generate
from advinterp.models.classifier import ImageClassifier, build_classifier


def synthetic_images(rows: Sequence[int], size: int = 32) -> np.ndarray:
    """``rows`` of the 12-image synthetic set (4 classes x 3, 2 families, seed 0) at
    ``size`` px: (len(rows), 3, size, size) float32 in [0, 1]."""
    ds = generate(SyntheticConfig(num_classes=4, images_per_class=3, families=2), size, seed=0)
    return ds.load(rows)


def warmed_tiny_resnet(num_classes: int = 4, size: int = 32) -> ImageClassifier:
    """An untrained tiny_resnet (seed 0) in eval mode, its BatchNorm running statistics
    made non-trivial by three forward passes of random ``size`` x ``size`` images."""
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", num_classes, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 3, size, size))
    return model.eval()
