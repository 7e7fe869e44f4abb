"""Small in-memory ``AttributeIndex`` objects for tests that need labels and a split only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advinterp.data.dataset import AttributeIndex, PartBoxes


def toy_index(
    labels: Sequence[int] | np.ndarray,
    split: Sequence[int] | np.ndarray,
    class_names: list[str],
    *,
    name: str = "toy",
    attribute: str = "a",
    boxes: PartBoxes | None = None,
) -> AttributeIndex:
    """Labels (N,) in [0, C), split (N,) of TRAIN/VAL/TEST, C = len(class_names) classes and
    one attribute, all-zero: the least an index needs to be valid.
    """
    return AttributeIndex(
        name=name,
        labels=np.asarray(labels),
        split=np.asarray(split, np.int8),
        class_names=class_names,
        attribute_names=[attribute],
        class_attributes=np.zeros((len(class_names), 1), np.float32),
        boxes=boxes,
    )
