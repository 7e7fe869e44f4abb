"""A narrow ResNet for the embedded default on CPU.

torchvision ships only ImageNet-width ResNets (64..512 channels, ~1.8 GFLOPs at 224 px);
resnet18 costs 4.7 ms per 64x64 image for forward+input-gradient on two cores here,
which makes the attack and adversarial-training stages too slow for a minutes-long
DAG. This model keeps torchvision's own ``BasicBlock`` (same ReLU/BN/residual
structure as the ResNet family, in-place ReLUs included) with CIFAR-style widths and costs
about 0.7 ms per image. Real runs select ``resnet152`` by name instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


class TinyResNet(nn.Module):
    """ResNet with one ``BasicBlock`` per stage and widths (16, 32, 64, 128).

    Shape:
        input: (N, in_channels, H, W) normalised images; output: (N, num_classes) logits.
        The penultimate pooled features have ``fc.in_features`` = 128 dims.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        in_channels: int = 3,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        blocks: list[nn.Module] = []
        inplanes = widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != width:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
                )
            blocks.append(BasicBlock(inplanes, width, stride, downsample))
            inplanes = width
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.avgpool(self.layers(x)).flatten(1)
        return self.fc(x)
