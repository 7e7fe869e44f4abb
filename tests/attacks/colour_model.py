"""A hand-set colour classifier for attack-to-explain tests (no training, deterministic)."""

from __future__ import annotations

import numpy as np
import torch
import zarr
from torch import nn

from advinterp.data.dataset import TEST, TRAIN, AttributeIndex
from advinterp.models.classifier import ImageClassifier
from tests.data.indexes import toy_index

SIZE = 16


def colour_model(scale: float = 10.0) -> ImageClassifier:
    """Logits = scale x mean of ReLU(channel): class c is 'mostly colour c'.

    The convolutional base is the 1x1 identity conv + ReLU, so its channel mean for a
    perturbation is the mean of its positive parts: Algorithm 2's salient region is
    where the perturbation is positive.
    """
    body = nn.Sequential(
        nn.Conv2d(3, 3, 1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    head = nn.Linear(3, 3)
    with torch.no_grad():
        body[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        head.weight.copy_(scale * torch.eye(3))
        head.bias.zero_()
    return ImageClassifier("colour", body, head, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).eval()


def reddish(n: int, seed: int = 0) -> torch.Tensor:
    """Images of classes 0/1 (red or green dominant), never class 2 (blue)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[0.6, 0.3, 0.2], [0.3, 0.6, 0.2]])[torch.arange(n) % 2]
    x = base[:, :, None, None] + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=g)
    return x.clamp(0, 1)


def colour_world(n: int) -> tuple[zarr.Array, AttributeIndex]:
    """``n`` images (n, 3, 16, 16) in [0, 1] of class i % 3 = their dominant colour
    (red, green, blue), under noise from ``default_rng(0)``; first half train, second test.
    """
    g = np.random.default_rng(0)
    labels = np.arange(n) % 3
    split = [TRAIN] * (n // 2) + [TEST] * (n - n // 2)
    x = 0.3 + 0.05 * g.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    x[np.arange(n), labels] += 0.3
    images = zarr.array(np.clip(x, 0, 1), chunks=(8, 3, SIZE, SIZE))
    return images, toy_index(labels, split, ["red", "green", "blue"], name="colours")
