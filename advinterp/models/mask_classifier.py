"""f2: a LeNet-style CNN that classifies LAN attention masks (Nguyen et al., Sec. 3).

Nguyen et al. base f2 on LeNet (LeCun et al., 1998) and train it on the masks g produces
for the training set, to predict the image's class. This is LeNet-5's layout
(conv 5x5 -> pool -> conv 5x5 -> pool -> 120 -> 84 -> classes) with ReLU and max-pooling,
and an adaptive pool to LeNet's 5x5 map so any image size works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from advinterp.models.checkpoint import load_from_state

MASK_CLASSIFIER_FORMAT = "advinterp-mask-classifier/1"


class MaskClassifier(nn.Module):
    """LeNet-style f2.

    Shape:
        masks: (N, C, H, W) float32 in [0, 1], H, W >= 16 -> logits (N, num_classes).
    """

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.dropout = float(dropout)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(masks))


def mask_classifier_state(model: MaskClassifier, **metadata: Any) -> dict[str, Any]:
    """A weights_only-loadable checkpoint payload for f2."""
    return {
        "format": MASK_CLASSIFIER_FORMAT,
        "num_classes": model.num_classes,
        "in_channels": model.in_channels,
        "dropout": model.dropout,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }


def mask_classifier_from_state(obj: dict[str, Any]) -> MaskClassifier:
    """Rebuild f2 from :func:`mask_classifier_state` (ValueError on a foreign payload)."""
    if obj.get("format") != MASK_CLASSIFIER_FORMAT:
        raise ValueError(f"not a mask-classifier checkpoint (format {obj.get('format')!r})")
    model = MaskClassifier(int(obj["num_classes"]), int(obj["in_channels"]), float(obj["dropout"]))
    model.load_state_dict(obj["state_dict"])
    return model.eval()


def load_mask_classifier(path: Path | str, device: torch.device) -> MaskClassifier:
    """f2 from a :func:`mask_classifier_state` file, on ``device``, in eval mode.

    Raises:
        CheckpointError: missing, unreadable, or not a mask-classifier checkpoint.
    """
    return load_from_state(path, device, mask_classifier_from_state)


@torch.no_grad()
def predict_proba(
    model: nn.Module, masks: Any, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Softmax of f2 over ``masks`` (N, C, H, W) in eval mode (restored after): (N, K)."""
    was_training = model.training
    model.eval()
    try:
        out = [
            torch.softmax(model(torch.as_tensor(masks[s : s + batch_size], device=device)), 1).cpu()
            for s in range(0, len(masks), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, getattr(model, "num_classes", 0))
