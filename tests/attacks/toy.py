"""A small, quickly trained classifier on a toy task, shared by attack and AT tests.

Four classes, each a fixed smooth colour pattern of small amplitude under pixel noise:
separable, but with a margin small enough (in L-inf) that a standard model is fooled at
eps of a few hundredths, so attacks and adversarial training have something to show.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from advinterp.models.adversarial_training import LossFn
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.models.training import accuracy, make_optimizer
from tests.models.toy_fit import fit_in_memory, numpy_order

CLASSES, SIZE = 4, 16


def toy_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, 16, 16) float32 in [0, 1] and (n,) int64 labels, balanced."""
    rng = np.random.default_rng(1234)  # the class patterns never change
    coarse = torch.as_tensor(rng.uniform(-1, 1, (CLASSES, 3, 4, 4)), dtype=torch.float32)
    patterns = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    noise = rng.normal(0, 0.08, (n, 3, SIZE, SIZE))
    x = 0.5 + 0.12 * patterns.numpy()[labels] + noise
    return np.clip(x, 0, 1).astype(np.float32), labels.astype(np.int64)


def train_toy(
    epochs: int = 6,
    loss_fn: LossFn | None = None,
    init: ImageClassifier | None = None,
    seed: int = 0,
) -> ImageClassifier:
    """A tiny_resnet trained on 128 toy images (standard, or with ``loss_fn``)."""
    torch.manual_seed(seed)
    x, y = toy_images(128, seed=1)
    model = init or build_classifier("tiny_resnet", CLASSES, (0.5,) * 3, (0.25,) * 3)
    fit_in_memory(
        model,
        x,
        y,
        [(x[:64], y[:64])],
        numpy_order(len(y), seed),
        epochs=epochs,
        optimizer=make_optimizer(model, "sgd", 0.05, 0.9, 0.0),
        seed=seed,
        augment=False,
        loss_fn=loss_fn,
    )
    return model.eval()


@functools.cache
def standard_toy_model() -> ImageClassifier:
    """Cached: trained once per test session (read-only use; tests must not modify it)."""
    return train_toy()


def held_out(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = toy_images(n, seed=99)
    return torch.as_tensor(x), torch.as_tensor(y)


def clean_accuracy(model: ImageClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    return accuracy(model, [(x, y)], torch.device("cpu"))
