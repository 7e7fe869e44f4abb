"""One interface for Göpfert et al.'s explainers (Sec. 3): a name, its arrays, ``explain``.

Every explainer explains given target classes of a batch of images and returns named
per-image arrays (saliency: one signed gradient; LIME: superpixels, the kept positive
ones, their weights, ...). ``outputs`` declares each array's per-image shape kind and
dtype, so a store can be laid out before anything runs and a result checked against it.
Random explainers seed each example from where it sits in its image set
(:class:`ExampleSlice`), so a set explained in pieces equals one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

# Per-image shape of an output: (C, H, W), (H, W), (T,) with T kept ranks, or scalar.
ShapeKind = Literal["image", "map", "rank", "one"]


@dataclass(frozen=True)
class ExampleSlice:
    """Where a batch of images sits: example i is ``start + i`` of image set ``image_set``.

    Random explainers seed example i from ``(seed, image_set, start + i)``; ``desc``
    labels progress logs only.
    """

    seed: int
    image_set: int = 0
    start: int = 0
    desc: str = "explain"


@runtime_checkable
class Explainer(Protocol):
    """An explainer of a classifier's decision for given classes.

    Attributes:
        name: the explainer's name in stores, tables and figures.
        outputs: array key -> (per-image shape kind, dtype) of what :meth:`explain` returns.
    """

    name: ClassVar[str]
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]]

    def explain(
        self,
        model: nn.Module,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        device: torch.device,
        where: ExampleSlice,
    ) -> dict[str, np.ndarray]:
        """Explain ``targets[i]`` for ``images[i]``; the model is left as found.

        Shape:
            images: (N, 3, H, W) float32 in [0, 1]; targets: (N,) int64.
            returns: key -> (N, *per-image shape) of the declared dtype.
        """
        ...


Attribution = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def batched_attribution(
    fn: Attribution,
    model: nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """``fn(model, x, t)`` over consecutive batches of ``batch_size`` images, on ``device``.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; targets: (N,) int64.
        returns: (N, 3, H, W) float32 attributions.
    """
    out = np.zeros(images.shape, np.float32)
    for s in range(0, len(images), batch_size):
        x = torch.as_tensor(images[s : s + batch_size], device=device)
        t = torch.as_tensor(targets[s : s + batch_size], device=device)
        out[s : s + len(x)] = fn(model, x, t).cpu().numpy()
    return out
