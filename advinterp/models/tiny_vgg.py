"""A narrow VGG-style CNN: the second architecture of attack-to-explain (Jalwana et al.).

Jalwana et al. show their clearest patterns for VGG-16 (Figs. 1-4) and check that
other architectures see the same features (Fig. 5, the cross-model check of Sec. 5.1).
torchvision's VGGs carry 4096-wide fully connected layers (130M parameters), far too
slow to train on two CPU cores, so this keeps VGG's shape (3x3 conv + BN + ReLU blocks,
2x2 max pooling, a plain convolutional base ``features`` followed by a classifier) at
CIFAR-like widths: about 0.3M parameters at 64 px. ReLUs are out-of-place, so hooks see
untouched tensors.

``TinyVGG`` is not in :data:`advinterp.models.classifier.LOCAL_ARCHS`, so
:func:`load_tiny_vgg` loads its checkpoints (written by ``save_classifier``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import CHECKPOINT_FORMAT, read_weights_file
from advinterp.models.classifier import ImageClassifier

ARCH = "tiny_vgg"


class TinyVGG(nn.Module):
    """``features``: one conv-BN-ReLU block and a 2x2 max pool per width; then pool + fc.

    Shape:
        input: (N, 3, H, W) normalised images; ``features`` output (N, widths[-1], H/2^k, W/2^k)
        with k = len(widths); forward: (N, num_classes) logits.
    """

    def __init__(self, num_classes: int = 1000, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
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


def build_tiny_vgg(
    num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> ImageClassifier:
    """An untrained TinyVGG wrapped like ``build_classifier`` does (fc -> head)."""
    body = TinyVGG(num_classes)
    head = nn.Linear(body.fc.in_features, num_classes)
    body.fc = nn.Identity()
    return ImageClassifier(ARCH, body, head, mean, std)


def load_tiny_vgg(path: Path | str, device: torch.device | str = "cpu") -> ImageClassifier:
    """Load a TinyVGG checkpoint written by ``save_classifier``, in eval mode.

    Raises:
        CheckpointError: not an advinterp checkpoint of a ``tiny_vgg``.
    """
    obj = read_weights_file(path, device)
    if obj.get("format") != CHECKPOINT_FORMAT or obj.get("arch") != ARCH:
        raise CheckpointError(f"{path}: not an advinterp {ARCH} checkpoint")
    model = build_tiny_vgg(int(obj["num_classes"]), obj["mean"], obj["std"])
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit a {ARCH}: {first}") from None
    return model.to(device).eval()
