"""A narrow VGG-style CNN: the second architecture of attack-to-explain (Jalwana et al.).

Jalwana et al. show their clearest patterns for VGG-16 (Figs. 1-4) and check that
other architectures see the same features (Fig. 5, the cross-model check of Sec. 5.1).
torchvision's VGGs carry 4096-wide fully connected layers (130M parameters), far too
slow to train on two CPU cores, so this keeps VGG's shape (3x3 conv + BN + ReLU blocks,
2x2 max pooling, a plain convolutional base ``features`` followed by a classifier) at
CIFAR-like widths: about 0.3M parameters at 64 px. ReLUs are out-of-place, so hooks see
untouched tensors.

Registered as ``tiny_vgg`` in :data:`advinterp.models.classifier.LOCAL_ARCHS`: built by
``build_classifier`` and loaded by ``load_classifier`` like every other architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class TinyVGG(nn.Module):
    """``features``: one conv-BN-ReLU block and a 2x2 max pool per width; then pool + fc.

    Shape:
        input: (N, in_channels, H, W) normalised images; ``features`` output (N, widths[-1], H/2^k, W/2^k)
        with k = len(widths); forward: (N, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        widths: Sequence[int] = (16, 32, 64, 128),
        in_channels: int = 3,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(cin, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=False),
                nn.MaxPool2d(2),
            ]
            cin = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))
