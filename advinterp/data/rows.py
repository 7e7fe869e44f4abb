"""Reading chosen rows of an images array, in the order asked for."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def read_rows(images: Any, rows: np.ndarray) -> torch.Tensor:
    """Images of ``rows`` (distinct, any order), read with one sorted selection.

    A zarr array is read with one orthogonal selection in increasing row order (each
    storage chunk touched once), then put back in the order of ``rows``.

    Shape:
        images: (N, 3, H, W) zarr or numpy array in [0, 1]; rows: (k,) integer;
        returns (k, 3, H, W) float32 tensor on the CPU.
    """
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows)
    if hasattr(images, "get_orthogonal_selection"):
        data = images.get_orthogonal_selection((rows[order],))
    else:
        data = np.asarray(images)[rows[order]]
    data = np.asarray(data, dtype=np.float32)
    out = np.empty_like(data)
    out[order] = data
    return torch.as_tensor(out)
