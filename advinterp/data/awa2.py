"""Animals with Attributes 2 (Xian et al., 2018) read from the directory users already have.

``root`` is the ``Animals_with_Attributes2`` directory (or its parent). Nothing is
downloaded. Files read:

====================================  ===================================================
``classes.txt``                       ``<class_id>\\t<class_name>`` (50 lines, e.g.
                                      ``grizzly+bear``)
``predicates.txt``                    ``<attribute_id>\\t<name>`` (85 lines)
``predicate-matrix-continuous.txt``   C rows x A columns in classes.txt x predicates.txt
                                      order, strengths 0..100, ``-1`` marks a missing
                                      value (the dataset's README)
``JPEGImages/<class_name>/*.jpg``     the images, one folder per class
====================================  ===================================================

What comes out: class attributes = continuous strengths / 100 in [0, 1], with the
missing values (``-1``) set to 0 — "not known to hold", which is also what the
dataset's own binary matrix (thresholded at the mean) makes of them. AwA2 has no
per-image attributes and no part annotations. There is no official image split for
the standard (all classes seen) setting Gulshad et al. use, so train/val/test is a
per-class random split with ``val_fraction`` / ``test_fraction`` (seeded). The
zero-shot class split (``trainclasses.txt`` / ``testclasses.txt``) is not read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from advinterp.data.dataset import AttributeIndex, stratified_split
from advinterp.data.tables import check_cells, find_file, read_class_matrix, read_id_names
from advinterp.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MISSING = -1.0


def locate_root(root: Path) -> Path:
    """The ``Animals_with_Attributes2`` directory: ``root`` or ``root/Animals_with_Attributes2``."""
    root = Path(root)
    inner = root / "Animals_with_Attributes2"
    if not (root / "classes.txt").is_file() and (inner / "classes.txt").is_file():
        return inner
    return root


def read_index(
    root: Path, val_fraction: float, test_fraction: float, seed: int
) -> tuple[AttributeIndex, list[Path]]:
    """Read an Animals_with_Attributes2 directory (see the module docstring).

    Returns:
        The index and the image paths in index order (class by class, file names sorted).

    Raises:
        DatasetError: naming the missing or malformed file (and line).
    """
    awa = locate_root(root)
    classes_txt = find_file(awa, "classes.txt")
    _, class_names, class_lines = read_id_names(classes_txt)
    _check_unique(classes_txt, class_names, class_lines, "class name")
    predicates_txt = find_file(awa, "predicates.txt")
    _, attribute_names, attr_lines = read_id_names(predicates_txt)
    _check_unique(predicates_txt, attribute_names, attr_lines, "predicate")
    class_attributes = _class_attributes(awa, len(class_names), len(attribute_names))

    images_dir = awa / "JPEGImages"
    if not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: missing image directory (JPEGImages/<class>/*.jpg)")
    paths: list[Path] = []
    labels: list[int] = []
    for c, name in enumerate(class_names):
        folder = images_dir / name
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing image folder for class '{name}' of classes.txt")
        files = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise DatasetError(f"{folder}: no images (*.jpg) for class '{name}'")
        paths.extend(files)
        labels.extend([c] * len(files))
    extra = sorted(
        p.name
        for p in images_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in set(class_names)
    )
    if extra:
        log.warning("%s: ignoring folders not in classes.txt: %s", images_dir, ", ".join(extra))

    label_array = np.asarray(labels, dtype=np.int64)
    split = stratified_split(label_array, val_fraction, test_fraction, seed)
    sample_ids = [p.relative_to(images_dir) for p in paths]
    classes = (class_names, attribute_names, class_attributes)
    index = AttributeIndex.read("awa2", sample_ids, label_array, split, classes)
    return index, paths


def _check_unique(path: Path, names: list[str], lines: list[int], what: str) -> None:
    seen: dict[str, int] = {}
    for name, line in zip(names, lines, strict=True):
        if name in seen:
            raise DatasetError(f"{path}:{line}: {what} '{name}' repeats line {seen[name]}")
        seen[name] = line


def _class_attributes(awa: Path, C: int, A: int) -> np.ndarray:
    path = find_file(awa, "predicate-matrix-continuous.txt")
    values = read_class_matrix(path, C, A, "predicate matrix", "predicates in predicates.txt")
    missing = values == MISSING
    bad = ~missing & ((values < 0) | (values > 100))
    check_cells(path, values, bad, "neither a strength in [0, 100] nor -1 (missing)")
    if missing.any():
        log.info("%s: %d missing values (-1) set to 0", path, int(missing.sum()))
    return np.where(missing, 0.0, values / 100.0).astype(np.float32)
