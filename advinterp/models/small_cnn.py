"""An MNIST-sized CNN: the classifier f of the digits profile.

TinyResNet's first stride-2 conv and four stages are built for 64 px birds; at 28 px it
pools a digit to 2x2 before its last stage. This keeps the shape of the MNIST model of
the adversarial-training literature (Madry et al.; TRADES' SmallCNN, which Zheng et al.
diagnose): two 3x3 conv blocks, 2x2 max pooling, two more, pooling, then two fully
connected layers, at CPU-friendly widths (about 60k parameters at the defaults). Batch
norm after each conv makes it converge in a few epochs. ReLUs are out-of-place, so
hooks and guided backprop see untouched tensors.

Registered as ``small_cnn`` in :data:`advinterp.models.classifier.LOCAL_ARCHS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SmallCNN(nn.Module):
    """conv-conv-pool-conv-conv-pool, adaptive 4x4 average pool, fc, fc.

    The adaptive pool makes the model take any input side (28 px digits: 7 -> 4).

    Shape:
        input: (N, in_channels, H, W) normalised images; forward: (N, num_classes) logits;
        the penultimate (``fc`` input) features have ``hidden`` dims.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32),
        hidden: int = 128,
    ):
        super().__init__()
        w1, w2 = widths

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]

        self.features = nn.Sequential(
            *block(in_channels, w1),
            *block(w1, w1),
            nn.MaxPool2d(2),
            *block(w1, w2),
            *block(w2, w2),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(w2 * 16, hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.features(x)))
