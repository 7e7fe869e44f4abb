"""The one dataset shape: splits, subsets, part boxes and the consistency checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from advinterp.data.dataset import (
    TEST,
    TRAIN,
    VAL,
    AttributeIndex,
    PartBoxes,
    carve_validation,
    stratified_split,
    stratified_subset,
    subset_index,
)
from advinterp.errors import DatasetError


def _labels() -> np.ndarray:
    return np.repeat([0, 1, 2], [10, 7, 3])


def test_stratified_split_proportions_per_class():
    labels = _labels()
    split = stratified_split(labels, 0.2, 0.3, seed=0)
    for c, n in zip(range(3), [10, 7, 3], strict=True):
        s = split[labels == c]
        n_test, n_val = max(1, round(0.3 * n)), round(0.2 * n)
        assert (s == TEST).sum() == n_test and (s == VAL).sum() == n_val
        assert (s == TRAIN).sum() == n - n_test - n_val
    assert split.dtype == np.int8


def test_stratified_split_is_seeded():
    labels = _labels()
    a, b = stratified_split(labels, 0.2, 0.3, 1), stratified_split(labels, 0.2, 0.3, 1)
    np.testing.assert_array_equal(a, b)
    assert len({tuple(stratified_split(labels, 0.2, 0.3, s)) for s in range(5)}) > 1


def test_carve_validation_moves_only_training_images():
    labels = _labels()
    official = np.where(np.arange(len(labels)) % 4 == 0, TEST, TRAIN).astype(np.int8)
    split = carve_validation(labels, official, 0.5, seed=0)
    np.testing.assert_array_equal(split == TEST, official == TEST)
    for c in range(3):
        n_train = ((labels == c) & (official == TRAIN)).sum()
        n_val = ((labels == c) & (split == VAL)).sum()
        assert n_val == min(round(0.5 * n_train), n_train - 1)
        assert ((labels == c) & (split == TRAIN)).sum() >= 1
    np.testing.assert_array_equal(carve_validation(labels, official, 0.5, 0), split)
    assert np.all(carve_validation(labels, official, 0.0, 0) == official)


def test_stratified_subset_takes_the_same_number_per_class():
    labels = _labels()
    keep = stratified_subset(labels, 6, seed=0)
    assert np.all(np.diff(keep) > 0)
    assert np.bincount(labels[keep]).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(stratified_subset(labels, 100, 0), np.arange(len(labels)))


def _index(n: int = 4, **changes) -> AttributeIndex:
    boxes = PartBoxes(
        offsets=np.array([0, 2, 2, 3, 4]),
        xyxy=np.array(
            [[0, 0, 0.5, 0.5], [0.2, 0.2, 1, 1], [0.1, 0.1, 0.3, 0.4], [0, 0, 1, 1]], np.float32
        ),
        part=np.array([0, 1, 1, 0]),
        attributes=np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], np.uint8),
    )
    base = AttributeIndex(
        name="tiny",
        labels=np.array([0, 1, 0, 1]),
        split=np.array([TRAIN, TRAIN, TEST, TEST], np.int8),
        class_names=["a", "b"],
        attribute_names=["x", "y", "z"],
        class_attributes=np.array([[0.1, 0.9, 0.0], [1.0, 0.0, 0.5]], np.float32),
        image_attributes=np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], np.uint8),
        part_names=["head", "tail"],
        boxes=boxes,
        sample_ids=["p", "q", "r", "s"],
    )
    return dataclasses.replace(base, **changes)


def test_subset_index_keeps_boxes_with_their_images():
    index = _index()
    sub = subset_index(index, np.array([3, 0]))
    np.testing.assert_array_equal(sub.labels, [1, 0])
    assert sub.sample_ids == ["s", "p"]
    np.testing.assert_array_equal(sub.boxes.offsets, [0, 1, 3])
    np.testing.assert_array_equal(sub.boxes.xyxy, index.boxes.xyxy[[3, 0, 1]])
    np.testing.assert_array_equal(sub.boxes.attributes, index.boxes.attributes[[3, 0, 1]])
    np.testing.assert_array_equal(sub.image_attributes, index.image_attributes[[3, 0]])
    empty = index.boxes.subset(np.array([1]))
    assert empty.offsets.tolist() == [0, 0] and empty.xyxy.shape == (0, 4)


def test_read_builds_the_same_index_as_the_constructor():
    index = _index()
    classes = (index.class_names, index.attribute_names, index.class_attributes)
    parts = (index.part_names, index.boxes)
    ids = np.array([1, 2, 3, 4])
    read = AttributeIndex.read(
        "tiny", ids, index.labels, index.split, classes, index.image_attributes, parts
    )
    assert read == dataclasses.replace(index, sample_ids=["1", "2", "3", "4"])
    bare = AttributeIndex.read("tiny", ["p", "q", "r", "s"], index.labels, index.split, classes)
    assert bare == dataclasses.replace(index, image_attributes=None, part_names=[], boxes=None)


def test_a_consistent_index_validates():
    _index().validate("tiny")


def _boxes(**changes) -> PartBoxes:
    return dataclasses.replace(_index().boxes, **changes)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"labels": np.zeros(0, int), "split": np.zeros(0, np.int8)}, "has no images"),
        ({"class_attributes": np.zeros((2, 2), np.float32)}, r"shape \(2, 2\), expected \(2, 3\)"),
        ({"class_attributes": np.array([[0, np.nan, 0], [0, 0, 0]], np.float32)}, "NaN or inf"),
        ({"class_attributes": np.array([[0, 1.5, 0], [0, 0, 0]], np.float32)}, r"must lie in \[0, 1\]"),
        ({"labels": np.array([0, 2, 0, 1])}, r"labels must lie in \[0, 2\)"),
        ({"split": np.array([TRAIN, TRAIN, TEST], np.int8)}, "split has 3 entries for 4 images"),
        ({"split": np.array([TRAIN, TRAIN, 5, TEST], np.int8)}, "split codes must be"),
        ({"split": np.array([TEST, TEST, TEST, TEST], np.int8)}, "the train split is empty"),
        ({"split": np.array([TRAIN, VAL, VAL, TRAIN], np.int8)}, "the test split is empty"),
        ({"image_attributes": np.zeros((4, 2), np.uint8)}, "image attributes have shape"),
        ({"image_attributes": np.full((4, 3), 2, np.uint8)}, "must be 0 or 1"),
        ({"boxes": _boxes(offsets=np.array([0, 2, 2, 3]))}, "do not cover the 4 images"),
        ({"boxes": _boxes(offsets=np.array([0, 3, 2, 3, 4]))}, "non-decreasing"),
        ({"boxes": _boxes(attributes=np.zeros((4, 2), np.uint8))}, r"attributes \(4, 3\)"),
        ({"boxes": _boxes(xyxy=np.array([[0, 0, 1.2, 1]] * 4, np.float32))}, r"fractions in \[0, 1\]"),
        ({"boxes": _boxes(xyxy=np.array([[0.5, 0, 0.2, 1]] * 4, np.float32))}, "x0 <= x1"),
        ({"boxes": _boxes(part=np.array([0, 1, 2, 0]))}, r"part box indices must lie in \[0, 2\)"),
    ],
)  # fmt: skip
def test_validate_names_what_is_wrong(changes, match):
    with pytest.raises(DatasetError, match=f"tiny: .*{match}"):
        _index(**changes).validate("tiny")
