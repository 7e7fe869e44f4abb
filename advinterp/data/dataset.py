"""The one dataset shape every source yields.

A source produces an :class:`AttributeIndex` (everything but pixels: labels, splits,
names, the class-attribute matrix, part boxes) and an :class:`ImageSource` that
renders or loads pixels for any set of sample indices. Keeping pixels behind
``load(indices)`` lets the ``dataset`` stage stream a 12k-image CUB or a generated
dataset into zarr shard by shard, with memory that does not grow with the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from advinterp.errors import DatasetError

SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2


@dataclass(frozen=True)
class PartBoxes:
    """Ground-truth part boxes for all images, ragged by image.

    Boxes of image ``i`` are rows ``offsets[i]:offsets[i+1]``.

    Shape:
        offsets: (N+1,) int64, non-decreasing, offsets[0] == 0.
        xyxy: (M, 4) float32, (x0, y0, x1, y1) as fractions of width/height in [0, 1].
        part: (M,) int64 index into ``part_names``.
        attributes: (M, A) uint8 {0, 1}: attributes visible in that box.
    """

    offsets: np.ndarray
    xyxy: np.ndarray
    part: np.ndarray
    attributes: np.ndarray

    def of(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def subset(self, indices: np.ndarray) -> PartBoxes:
        rows = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices]
        take = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        counts = np.array([len(r) for r in rows], dtype=np.int64)
        return PartBoxes(
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            xyxy=self.xyxy[take],
            part=self.part[take],
            attributes=self.attributes[take],
        )


@dataclass(frozen=True)
class AttributeIndex:
    """Everything about a dataset but its pixels.

    Shape:
        labels: (N,) int64 in [0, C).
        split: (N,) int8 in {0: train, 1: val, 2: test}.
        class_attributes: (C, A) float32 in [0, 1] (CUB's percentages / 100).
        image_attributes: (N, A) uint8 {0, 1} or None where the source has none.
    """

    name: str
    labels: np.ndarray
    split: np.ndarray
    class_names: list[str]
    attribute_names: list[str]
    class_attributes: np.ndarray
    image_attributes: np.ndarray | None = None
    part_names: list[str] = field(default_factory=list)
    boxes: PartBoxes | None = None
    sample_ids: list[str] = field(default_factory=list)

    @classmethod
    def read(
        cls,
        name: str,
        sample_ids: Iterable[object],
        labels: np.ndarray,
        split: np.ndarray,
        classes: tuple[list[str], list[str], np.ndarray],
        image_attributes: np.ndarray | None = None,
        parts: tuple[list[str], PartBoxes | None] | None = None,
    ) -> AttributeIndex:
        """The index a directory reader (CUB, LAD, AwA2) builds.

        ``classes`` is (class_names, attribute_names, (C, A) class_attributes), ``parts``
        (part_names, boxes) where the source has part boxes; sample ids are kept as strings.
        """
        class_names, attribute_names, class_attributes = classes
        part_names, boxes = parts if parts is not None else ([], None)
        return cls(
            name,
            labels,
            split,
            class_names,
            attribute_names,
            class_attributes,
            image_attributes,
            part_names,
            boxes,
            [str(s) for s in sample_ids],
        )

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def validate(self, origin: str) -> None:
        """Check internal consistency; ``origin`` names the file or source in errors."""
        C, A = len(self.class_names), len(self.attribute_names)
        n = self.num_samples
        if n == 0:
            raise DatasetError(f"{origin}: the dataset has no images")
        if self.class_attributes.shape != (C, A):
            raise DatasetError(
                f"{origin}: class-attribute matrix has shape {self.class_attributes.shape}, "
                f"expected ({C}, {A}) for {C} classes and {A} attributes"
            )
        if not np.all(np.isfinite(self.class_attributes)):
            raise DatasetError(f"{origin}: class-attribute matrix contains NaN or inf")
        if self.class_attributes.size and (
            self.class_attributes.min() < 0 or self.class_attributes.max() > 1
        ):
            raise DatasetError(
                f"{origin}: class-attribute values must lie in [0, 1], found "
                f"{self.class_attributes.min():g}..{self.class_attributes.max():g}"
            )
        if self.labels.min() < 0 or self.labels.max() >= C:
            raise DatasetError(
                f"{origin}: labels must lie in [0, {C}), found {self.labels.min()}..{self.labels.max()}"
            )
        if self.split.shape != (n,):
            raise DatasetError(f"{origin}: split has {self.split.shape[0]} entries for {n} images")
        if not np.isin(self.split, (TRAIN, VAL, TEST)).all():
            raise DatasetError(f"{origin}: split codes must be 0 (train), 1 (val) or 2 (test)")
        for code, name in enumerate(SPLITS):
            if name != "val" and not np.any(self.split == code):
                raise DatasetError(f"{origin}: the {name} split is empty")
        if self.image_attributes is not None and self.image_attributes.shape != (n, A):
            raise DatasetError(
                f"{origin}: image attributes have shape {self.image_attributes.shape}, "
                f"expected ({n}, {A})"
            )
        ia = self.image_attributes
        if ia is not None and ia.size and ia.max() > 1:
            raise DatasetError(f"{origin}: image attributes must be 0 or 1")
        if self.boxes is not None:
            self._validate_boxes(origin, n, A)

    def _validate_boxes(self, origin: str, n: int, A: int) -> None:
        b = self.boxes
        assert b is not None
        m = len(b.part)
        if b.offsets.shape != (n + 1,) or b.offsets[0] != 0 or b.offsets[-1] != m:
            raise DatasetError(f"{origin}: part boxes do not cover the {n} images")
        if np.any(np.diff(b.offsets) < 0):
            raise DatasetError(f"{origin}: part box offsets must be non-decreasing")
        if b.xyxy.shape != (m, 4) or b.attributes.shape != (m, A):
            raise DatasetError(
                f"{origin}: {m} part boxes need xyxy ({m}, 4) and attributes ({m}, {A}), "
                f"found {b.xyxy.shape} and {b.attributes.shape}"
            )
        if m == 0:
            return
        x0, y0, x1, y1 = b.xyxy.T
        if not np.all(np.isfinite(b.xyxy)) or b.xyxy.min() < 0 or b.xyxy.max() > 1:
            raise DatasetError(f"{origin}: part box coordinates must be fractions in [0, 1]")
        if np.any(x1 < x0) or np.any(y1 < y0):
            raise DatasetError(f"{origin}: part boxes must satisfy x0 <= x1 and y0 <= y1")
        if b.part.min() < 0 or b.part.max() >= len(self.part_names):
            raise DatasetError(
                f"{origin}: part box indices must lie in [0, {len(self.part_names)})"
            )


class ImageSource(Protocol):
    """Pixels on demand: ``load(indices)`` -> (n, C, H, W) float32 in [0, 1] (C = 3 or 1)."""

    @property
    def image_size(self) -> int:
        """Side of the square images in pixels (frozen dataclasses implement it read-only)."""
        ...

    def load(self, indices: Sequence[int]) -> np.ndarray: ...


def stratified_subset(labels: np.ndarray, max_images: int, seed: int) -> np.ndarray:
    """Indices of a class-stratified subset of about ``max_images`` images, sorted."""
    if max_images >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(1, max_images // len(classes))
    keep = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        keep.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(keep))


def split_rows(index: AttributeIndex, split: int, max_images: int | None, seed: int) -> np.ndarray:
    """Rows of ``split`` (TRAIN/VAL/TEST), or a class-stratified subset of about
    ``max_images`` of them (:func:`stratified_subset`, seeded); sorted either way."""
    rows = np.flatnonzero(index.split == split)
    if max_images is None:
        return rows
    return rows[stratified_subset(index.labels[rows], max_images, seed)]


def subset_index(index: AttributeIndex, keep: np.ndarray) -> AttributeIndex:
    """The index restricted to samples ``keep`` (in that order)."""
    return AttributeIndex(
        name=index.name,
        labels=index.labels[keep],
        split=index.split[keep],
        class_names=index.class_names,
        attribute_names=index.attribute_names,
        class_attributes=index.class_attributes,
        image_attributes=None if index.image_attributes is None else index.image_attributes[keep],
        part_names=index.part_names,
        boxes=None if index.boxes is None else index.boxes.subset(keep),
        sample_ids=[index.sample_ids[i] for i in keep] if index.sample_ids else [],
    )


def carve_validation(
    labels: np.ndarray, split: np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """Move a per-class random ``val_fraction`` of the training images to val.

    For datasets with an official train/test split (CUB, LAD): validation comes out
    of the training images, stratified by class and deterministic in ``seed``; each
    class keeps at least one training image.

    Returns:
        (N,) int8 split codes (test rows unchanged).
    """
    rng = np.random.default_rng(seed)
    out = np.asarray(split, dtype=np.int8).copy()
    for c in np.unique(labels[out == TRAIN]):
        members = rng.permutation(np.flatnonzero((labels == c) & (out == TRAIN)))
        n_val = min(round(val_fraction * len(members)), len(members) - 1)
        out[members[:n_val]] = VAL
    return out


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Per-class random train/val/test assignment, deterministic in ``seed``.

    Returns:
        (N,) int8 split codes.
    """
    rng = np.random.default_rng(seed)
    split = np.zeros(len(labels), dtype=np.int8)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, round(test_fraction * len(members)))
        n_val = round(val_fraction * len(members))
        split[members[:n_test]] = TEST
        split[members[n_test : n_test + n_val]] = VAL
    return split
