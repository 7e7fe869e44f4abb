"""Göpfert et al.'s explainers, run together on one set of images.

Every image is explained for the class the model predicts on it (for a localized
adversarial example: the attack's target). Classic saliency and guided backprop give
signed input gradients, LIME its best positively contributing superpixels, and the
random baseline a uniformly random pixel order; :mod:`advinterp.analysis.localization`
turns these into pixel sets and scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from advinterp.explainers.guided_backprop import guided_backprop
from advinterp.explainers.lime_image import FastLimeImage
from advinterp.explainers.random_baseline import random_scores
from advinterp.explainers.saliency import saliency
from advinterp.models.frozen import frozen
from advinterp.progress import track

EXPLAINERS = ("saliency", "guided_backprop", "lime", "random")


@dataclass(frozen=True)
class LimeSettings:
    """How LIME runs: its segmentation callable, sample count, batch and kept superpixels."""

    segmentation_fn: Callable[[np.ndarray], np.ndarray]
    num_samples: int = 1000
    batch_size: int = 256
    top: int = 20


def lime_seed(seed: int, image_set: int, i: int) -> int:
    """The int ``random_state`` of LIME for example ``i`` of a set (also usable with ``lime``)."""
    return int(np.random.SeedSequence([seed, image_set, i]).generate_state(1)[0])


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int, device: torch.device):
    """Arg-max class of each image (eval mode, restored). Shape: (N, 3, H, W) -> (N,) int64."""
    with frozen(model):
        out = [
            model(torch.as_tensor(images[s : s + batch_size], device=device)).argmax(1).cpu()
            for s in range(0, len(images), batch_size)
        ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def explain_images(
    model: nn.Module,
    images: np.ndarray,
    *,
    lime: LimeSettings,
    batch_size: int,
    device: torch.device,
    seed: int,
    image_set: int = 0,
    start: int = 0,
    desc: str = "explain",
) -> dict[str, Any]:
    """Explain each image's predicted class with every explainer.

    The random parts (LIME's ``random_state``, the random baseline) are seeded per
    example from ``(seed, image_set, start + i)``, so a set explained in pieces (one
    storage shard per process, say) gives the same explanations as in one call.

    Args:
        start: position of ``images[0]`` in its image set.

    Returns:
        Mapping of arrays (one row per image):
        ``explained`` (N,) int64 the explained (predicted) class;
        ``saliency``, ``guided_backprop`` (N, 3, H, W) float32 signed attributions;
        ``lime_segments`` (N, H, W) int32; ``lime_top`` (N, T) int32 positive superpixel
        ids, best first, -1 padded; ``lime_weights`` (N, T) float32 their weights;
        ``lime_num_segments``, ``lime_evaluated`` (N,) int32; ``lime_score`` (N,) float32
        (R² of the surrogate); ``lime_seed`` (N,) uint32; ``random`` (N, H, W) float32.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
    """
    n, _, h, w = images.shape
    explained = predict(model, images, batch_size, device)
    sal = np.zeros(images.shape, np.float32)
    gbp = np.zeros(images.shape, np.float32)
    for s in range(0, n, batch_size):
        x = torch.as_tensor(images[s : s + batch_size], device=device)
        t = torch.as_tensor(explained[s : s + batch_size], device=device)
        sal[s : s + len(x)] = saliency(model, x, t).cpu().numpy()
        gbp[s : s + len(x)] = guided_backprop(model, x, t).cpu().numpy()

    top = lime.top
    segments = np.zeros((n, h, w), np.int32)
    lime_top = np.full((n, top), -1, np.int32)
    lime_weights = np.zeros((n, top), np.float32)
    num_segments = np.zeros(n, np.int32)
    evaluated = np.zeros(n, np.int32)
    score = np.zeros(n, np.float32)
    seeds = np.array([lime_seed(seed, image_set, start + i) for i in range(n)], np.uint32)
    for i in track(range(n), total=n, desc=f"{desc}: LIME", unit="image"):
        explainer = FastLimeImage(
            model, random_state=int(seeds[i]), batch_size=lime.batch_size, device=device
        )
        hwc = np.ascontiguousarray(images[i].transpose(1, 2, 0))
        exp = explainer.explain(
            hwc,
            int(explained[i]),
            num_samples=lime.num_samples,
            segmentation_fn=lime.segmentation_fn,
        )
        ids = exp.top_positive(top)
        segments[i] = exp.segments
        lime_top[i, : len(ids)] = ids
        lime_weights[i, : len(ids)] = exp.weights[ids]
        num_segments[i] = len(np.unique(exp.segments))
        evaluated[i] = exp.num_evaluated
        score[i] = exp.score
    random = np.zeros((n, h, w), np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, image_set, 7, start + i])
        random[i] = random_scores(1, h, w, rng)[0]
    return {
        "explained": explained.astype(np.int64),
        "saliency": sal,
        "guided_backprop": gbp,
        "lime_segments": segments,
        "lime_top": lime_top,
        "lime_weights": lime_weights,
        "lime_num_segments": num_segments,
        "lime_evaluated": evaluated,
        "lime_score": score,
        "lime_seed": seeds,
        "random": random,
    }
