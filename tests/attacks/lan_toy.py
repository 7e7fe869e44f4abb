"""A toy dataset store for the LAN tests: the toy task's images in zarr, with splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from advinterp.data.dataset import AttributeIndex
from advinterp.store import create_group, write_array
from tests.attacks.toy import CLASSES, toy_images
from tests.data.indexes import toy_index

# Rows 0-23 train, 24-31 val, 32-47 test (every class in every split).
SPLIT = np.repeat(np.array([0, 1, 2], np.int8), [24, 8, 16])


def toy_dataset(
    path: Path, seed: int = 7, split: np.ndarray = SPLIT, chunk_size: int = 8
) -> tuple[Any, AttributeIndex]:
    """(images zarr array (N, 3, 16, 16) float32 in [0, 1], its index) of len(split) rows."""
    x, y = toy_images(len(split), seed=seed)
    group = create_group(path)
    images = write_array(
        group, "images", x, dims=("sample", "channel", "y", "x"), chunk_size=chunk_size
    )
    index = toy_index(y, split, [f"c{k}" for k in range(CLASSES)])
    return images, index
