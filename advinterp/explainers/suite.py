"""Göpfert et al.'s explainers, run together on one set of images.

Every image is explained for the class the model predicts on it (for a localized
adversarial example: the attack's target). Classic saliency gives the positive part of
the input gradient of J(x, y) (``explain.saliency`` picks J), guided backprop a signed
attribution, LIME its best positively contributing superpixels, and the
random baseline a uniformly random pixel order; :mod:`advinterp.analysis.localization`
turns these into pixel sets and scores them.

:data:`REGISTRY` lists the explainers (each an
:class:`~advinterp.explainers.protocol.Explainer`); :data:`EXPLAINERS` their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from advinterp.explainers.guided_backprop import GuidedBackpropExplainer
from advinterp.explainers.lime_image import LimeExplainer, LimeSettings, lime_seed
from advinterp.explainers.protocol import ExampleSlice, Explainer, ShapeKind
from advinterp.explainers.random_baseline import RandomExplainer
from advinterp.explainers.saliency import SaliencyExplainer, SaliencyForm
from advinterp.models.predict import predict

__all__ = [
    "EXPLAINERS",
    "OUTPUTS",
    "REGISTRY",
    "LimeSettings",
    "explain_images",
    "explainers",
    "lime_seed",
]

REGISTRY: tuple[type[Explainer], ...] = (
    SaliencyExplainer,
    GuidedBackpropExplainer,
    LimeExplainer,
    RandomExplainer,
)
EXPLAINERS: tuple[str, ...] = tuple(cls.name for cls in REGISTRY)
# Everything explain_images returns per image: the explained class, then each explainer's.
OUTPUTS: Mapping[str, tuple[ShapeKind, str]] = {
    "explained": ("one", "int64"),
    **{key: spec for cls in REGISTRY for key, spec in cls.outputs.items()},
}


def explainers(
    lime: LimeSettings, batch_size: int, saliency: SaliencyForm = "log_prob"
) -> tuple[Explainer, ...]:
    """The registry's explainers, configured: gradient batches of ``batch_size``, ``lime``,
    saliency of the objective J named by ``saliency``."""
    return (
        SaliencyExplainer(batch_size, saliency),
        GuidedBackpropExplainer(batch_size),
        LimeExplainer(lime),
        RandomExplainer(),
    )


def explain_images(
    model: nn.Module,
    images: np.ndarray,
    *,
    lime: LimeSettings,
    batch_size: int,
    device: torch.device,
    seed: int,
    saliency: SaliencyForm = "log_prob",
    image_set: int = 0,
    start: int = 0,
    desc: str = "explain",
) -> dict[str, Any]:
    """Explain each image's predicted class with every explainer of the registry.

    The random parts (LIME's ``random_state``, the random baseline) are seeded per
    example from ``(seed, image_set, start + i)``, so a set explained in pieces (one
    storage shard per process, say) gives the same explanations as in one call.

    Args:
        saliency: the objective J of classic saliency (``explain.saliency``).
        start: position of ``images[0]`` in its image set.

    Returns:
        :data:`OUTPUTS`' arrays, one row per image: ``explained`` (N,) int64 the
        explained (predicted) class, then each explainer's (see their ``explain``):
        ``saliency`` (N, 3, H, W) float32 >= 0, ``guided_backprop`` (N, 3, H, W) float32; ``lime_*``;
        ``random`` (N, H, W) float32.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
    """
    explained = predict(model, images, batch_size, device).numpy()
    where = ExampleSlice(seed, image_set, start, desc)
    out: dict[str, Any] = {"explained": explained.astype(np.int64)}
    for explainer in explainers(lime, batch_size, saliency):
        out.update(explainer.explain(model, images, explained, device=device, where=where))
    return out
