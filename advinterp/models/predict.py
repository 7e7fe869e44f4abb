"""Batched inference: the one loop every stage uses to ask a model for its classes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def _on(batch: Any, device: torch.device) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    return torch.as_tensor(np.asarray(batch), device=device)


@torch.no_grad()
def predict_logits(
    model: nn.Module, images: Any, batch_size: int, device: torch.device | None = None
) -> torch.Tensor:
    """Logits of ``images`` in eval mode (the model's mode is restored), on the CPU.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]: a tensor, array or zarr array (read
            ``batch_size`` rows at a time) -> (N, C) float32.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [
            model(_on(images[s : s + batch_size], device)).cpu()
            for s in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def predict(
    model: nn.Module, images: Any, batch_size: int, device: torch.device | None = None
) -> torch.Tensor:
    """Top-1 class of each image (eval mode, restored): (N, 3, H, W) -> (N,) int64 on the CPU."""
    logits = predict_logits(model, images, batch_size, device)
    return logits.argmax(1) if len(logits) else torch.zeros(0, dtype=torch.long)
