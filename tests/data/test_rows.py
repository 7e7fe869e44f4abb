"""Reading chosen rows of an images array in the order asked for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from advinterp.data.rows import read_rows


@pytest.fixture
def images() -> np.ndarray:
    # row i holds the value i everywhere: the rows read are visible in the result
    return np.arange(7, dtype=np.float64)[:, None, None, None] * np.ones((7, 3, 2, 2))


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
def test_rows_come_back_in_the_order_asked(images, kind):
    src = images if kind == "numpy" else zarr.array(images, chunks=(3, 3, 2, 2))
    rows = np.array([5, 0, 6, 2])
    out = read_rows(src, rows)
    assert out.dtype == torch.float32 and out.shape == (4, 3, 2, 2)
    assert out[:, 0, 0, 0].tolist() == [5.0, 0.0, 6.0, 2.0]
    assert torch.equal(out, torch.as_tensor(images[rows], dtype=torch.float32))


def test_no_rows_is_an_empty_batch(images):
    assert read_rows(images, np.array([], dtype=np.int64)).shape == (0, 3, 2, 2)
