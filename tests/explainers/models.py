"""Small classifiers shared by the explainer (and localized-attack) tests."""

from __future__ import annotations

import torch

from advinterp.models.classifier import ImageClassifier, build_classifier


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
