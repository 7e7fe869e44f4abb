"""The class-stratified test subset: its rows, images and labels, and the empty case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.analysis.evaluation_images import evaluation_images
from advinterp.data.artifact import DatasetArtifact
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex, split_rows
from advinterp.errors import DatasetError
from tests.data.indexes import toy_index

CPU = torch.device("cpu")


def _index(split: np.ndarray) -> AttributeIndex:
    return toy_index(np.arange(len(split)) % 2, split, ["a", "b"], attribute="z")


def test_rows_images_and_labels():
    images = np.arange(12, dtype=np.float32).reshape(12, 1, 1, 1) * np.ones(
        (1, 3, 2, 2), np.float32
    )
    index = _index(np.array([TRAIN] * 4 + [TEST] * 8, dtype=np.int8))
    got = evaluation_images(DatasetArtifact(index, images, 5), 4, seed=1, device=CPU)
    assert got.rows.tolist() == split_rows(index, TEST, 4, 1).tolist()
    assert len(got.rows) == 4 and np.bincount(index.labels[got.rows]).tolist() == [2, 2]
    assert got.x.dtype == torch.float32 and got.x.shape == (4, 3, 2, 2)
    assert got.x[:, 0, 0, 0].tolist() == got.rows.astype(float).tolist()  # row i holds i
    assert got.y.tolist() == index.labels[got.rows].tolist()
    whole = evaluation_images(DatasetArtifact(index, images, 5), None, seed=1, device=CPU)
    assert whole.rows.tolist() == list(range(4, 12))


def test_an_empty_test_split_is_refused():
    index = _index(np.full(4, TRAIN, dtype=np.int8))
    with pytest.raises(DatasetError, match="no images"):
        evaluation_images(
            DatasetArtifact(index, np.zeros((4, 3, 2, 2), np.float32), 2), None, seed=0, device=CPU
        )
