"""Robust accuracy of one model under several attacks (Zheng et al. Tables 2-3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from advinterp.models.predict import predict

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def attack_batches(
    attack: Attack, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``attack(model, x, y)`` applied ``batch_size`` images at a time.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64; returns x's shape, in [0, 1].
    """
    out = [
        attack(model, x[s : s + batch_size], y[s : s + batch_size])
        for s in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else x.clone()


def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Top-1 classes in eval mode (the mode is restored), on ``x``'s device.

    :func:`advinterp.models.predict.predict` on ``x``'s device (same batches, same
    logits; argmax keeps the first maximum on every device), moved back there.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; returns (N,) int64 on ``x.device``.
    """
    return predict(model, x, batch_size, device=x.device).to(x.device)


def robust_accuracies(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, Attack],
    batch_size: int = 128,
) -> dict[str, float]:
    """Clean accuracy and accuracy under each attack, on the same images.

    Returns:
        ``{"clean": acc, name: acc for each attack}``, floats in [0, 1].
    """
    if len(x) == 0:
        raise ValueError("no images to evaluate")
    result = {"clean": float((predictions(model, x, batch_size) == y).double().mean())}
    for name, attack in attacks.items():
        x_adv = attack_batches(attack, model, x, y, batch_size)
        result[name] = float((predictions(model, x_adv, batch_size) == y).double().mean())
    return result
