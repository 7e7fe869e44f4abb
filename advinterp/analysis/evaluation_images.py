"""The class-stratified test subset the InterpretGAN evaluations score on (D* before
the attack, Zheng et al. Table 1; the images of Tables 2-3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from advinterp.data.artifact import DatasetArtifact
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST, split_rows
from advinterp.errors import DatasetError


@dataclass(frozen=True)
class EvaluationImages:
    """Rows of the dataset and their images and labels, on one device.

    Shape:
        rows: (n,) sorted int64; x: (n, 3, H, W) float32 in [0, 1]; y: (n,) int64.
    """

    rows: np.ndarray
    x: torch.Tensor
    y: torch.Tensor


def evaluation_images(
    data: DatasetArtifact,
    max_images: int | None,
    *,
    seed: int,
    device: torch.device,
) -> EvaluationImages:
    """About ``max_images`` test images, the same number per class (all of the test
    split for None), drawn with ``seed`` (:func:`advinterp.data.dataset.split_rows`).

    Raises:
        DatasetError: when the test split selects no images.
    """
    index = data.index
    rows = split_rows(index, TEST, max_images, seed)
    parts = [x for _, x in iter_batches(data.images, rows, 256, data.chunk)]
    if not parts:
        raise DatasetError("the test split selects no images")
    return EvaluationImages(
        rows=rows,
        x=torch.as_tensor(np.concatenate(parts), device=device),
        y=torch.as_tensor(index.labels[rows], device=device),
    )
