"""A hand-set colour classifier for attack-to-explain tests (no training, deterministic)."""

from __future__ import annotations

import torch
from torch import nn

from advinterp.models.classifier import ImageClassifier

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
