"""θ(x): pooled penultimate-layer features (Gulshad et al., Sec. 3.2) and logits."""

from __future__ import annotations

import numpy as np
import torch

from advinterp.models.classifier import ImageClassifier


@torch.no_grad()
def features_and_logits(
    model: ImageClassifier, images: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of ``images`` in eval mode, ``batch_size`` at a time.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
        returns: features (N, D) float32, logits (N, C) float32.
    """
    was_training = model.training
    model.eval()
    try:
        feats, logits = [], []
        for s in range(0, len(images), batch_size):
            x = torch.as_tensor(images[s : s + batch_size], device=device)
            f = model.features(x)
            feats.append(f.cpu())
            logits.append(model.head(f).cpu())
    finally:
        model.train(was_training)
    if not feats:
        return (
            np.zeros((0, model.feature_dim), np.float32),
            np.zeros((0, model.num_classes), np.float32),
        )
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()
