"""LAD, the Large-scale Attribute Dataset (Zhao et al., CVPR-W 2019), read as distributed.

LAD has 78,017 images of 230 classes in 5 super-classes (animals A, fruits F,
vehicles V, electronics E, hairstyles H) and 359 attributes annotated per image.
``root`` is the folder holding ``LAD_annotations/`` and ``LAD_images/`` (or the
``LAD_annotations`` folder itself, with ``LAD_images`` beside it). Nothing is
downloaded. Files read from ``LAD_annotations/``; fields are comma-separated:

==================================  ======================================================
``label_list.txt``                  ``<label_id>, <English name>[, <Chinese name>]``, e.g.
                                    ``Label_A_01, dog, 狗``; defines the class order
``attribute_list.txt``              ``<attribute_id>, <name>[, ...]`` (``Attr_A_001, ...``);
                                    defines the attribute order
``attributes_per_class.txt``        ``<label_id>, [ v_1 ... v_A ]`` class-level attribute
                                    values in [0, 1] (brackets and commas optional)
``images.txt``                      ``<image_id>, <label_id>, <bounding box ...>, <path>``;
                                    ``<path>`` is relative to ``LAD_images/``; the box is
                                    not used
``split_supervisedlearning.txt``    the image split for supervised learning: a ``train:``
                                    line, training image ids (one per line or
                                    comma-separated), a ``test:`` line, test image ids
``attributes.txt`` (optional)       ``<label_id>, <path>, [ a_1 ... a_A ]`` per-image 0/1
                                    attribute labels
==================================  ======================================================

What comes out: the split of ``split_supervisedlearning.txt`` (images not in its train
list are test images, as the dataset's users read it), with validation carved out of
the training images per class (``val_fraction``, seeded; ``test_fraction`` does not
apply); class attributes as given; per-image attributes when ``attributes.txt`` covers
every image (otherwise a warning and none). No part boxes: LAD annotates none. The
zero-shot class splits (``split_zsl.txt``) are not read.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from advinterp.data.dataset import TEST, TRAIN, AttributeIndex, carve_validation
from advinterp.data.tables import find_file, read_lines, read_numbers
from advinterp.errors import DatasetError

log = logging.getLogger(__name__)

ANNOTATIONS, IMAGES = "LAD_annotations", "LAD_images"
SPLIT_FILE = "split_supervisedlearning.txt"
_HEADER = re.compile(r"^(train|test)\s*:\s*(.*)$", re.IGNORECASE)


def locate(root: Path) -> tuple[Path, Path]:
    """(annotation folder, image folder) for a LAD ``root``."""
    root = Path(root)
    if (root / ANNOTATIONS).is_dir() or not (root / "label_list.txt").is_file():
        return root / ANNOTATIONS, root / IMAGES
    return root, root.parent / IMAGES


def read_index(
    root: Path, val_fraction: float, test_fraction: float, seed: int
) -> tuple[AttributeIndex, list[Path]]:
    """Read a LAD directory (see the module docstring for the files).

    Returns:
        The index and the image paths in ``images.txt`` order.

    Raises:
        DatasetError: naming the missing or malformed file (and line).
    """
    ann, images_dir = locate(root)
    if not ann.is_dir():
        raise DatasetError(f"{ann}: missing annotation folder (label_list.txt, images.txt, ...)")
    label_txt = find_file(ann, "label_list.txt")
    label_ids, class_names = _id_name_list(label_txt, "label")
    attr_txt = find_file(ann, "attribute_list.txt")
    _, attribute_names = _id_name_list(attr_txt, "attribute")
    class_of = {lab: c for c, lab in enumerate(label_ids)}
    class_attributes = _class_attributes(ann, class_of, len(attribute_names))

    images_txt = find_file(ann, "images.txt")
    image_ids, labels, rel_paths = _images(images_txt, class_of, label_txt)
    paths = [images_dir / p for p in rel_paths]
    split = _split(ann, image_ids, images_txt)
    split = carve_validation(labels, split, val_fraction, seed)
    image_attributes = _image_attributes(ann, rel_paths, labels, label_ids, len(attribute_names))

    classes = (class_names, attribute_names, class_attributes)
    index = AttributeIndex.read("lad", image_ids, labels, split, classes, image_attributes)
    return index, paths


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split(",")]


def _id_name_list(path: Path, what: str) -> tuple[list[str], list[str]]:
    """``<id>, <name>[, ...]`` lines: ids (unique) and names in file order."""
    ids, names = [], []
    seen: dict[str, int] = {}
    for n, line in read_lines(path):
        fields = _fields(line)
        if len(fields) < 2 or not fields[0] or not fields[1] or " " in fields[0]:
            raise DatasetError(f"{path}:{n}: expected '<{what} id>, <name>', found {line[:60]!r}")
        if fields[0] in seen:
            raise DatasetError(f"{path}:{n}: {what} id {fields[0]} repeats line {seen[fields[0]]}")
        seen[fields[0]] = n
        ids.append(fields[0])
        names.append(fields[1])
    return ids, names


def _vector_rows(path: Path) -> tuple[list[int], list[str], list[str]]:
    """Lines ``<head>, [ values ]`` (brackets optional): (line numbers, heads, value text)."""
    numbers, heads, vectors = [], [], []
    for n, line in read_lines(path):
        if "[" in line:
            i, j = line.index("["), line.rfind("]")
            if j < i:
                raise DatasetError(f"{path}:{n}: unbalanced '[' in {line[:60]!r}")
            head, vec = line[:i].strip().rstrip(","), line[i + 1 : j]
        else:
            head, _, vec = line.partition(",")
        if not head.strip() or not vec.strip():
            raise DatasetError(f"{path}:{n}: expected '<label>, [ values ]', found {line[:60]!r}")
        numbers.append(n)
        heads.append(head.strip())
        vectors.append(vec.replace(",", " ").strip())
    return numbers, heads, vectors


def _matrix(path: Path, numbers: list[int], vectors: list[str], width: int) -> np.ndarray:
    for n, vec in zip(numbers, vectors, strict=True):
        count = len(vec.split())
        if count != width:
            raise DatasetError(
                f"{path}:{n}: {count} values, expected {width} (one per attribute in "
                "attribute_list.txt)"
            )
    return read_numbers(path, text="\n".join(vectors), line_numbers=numbers)


def _class_attributes(ann: Path, class_of: dict[str, int], A: int) -> np.ndarray:
    path = find_file(ann, "attributes_per_class.txt")
    numbers, heads, vectors = _vector_rows(path)
    values = _matrix(path, numbers, vectors, A)
    out = np.full((len(class_of), A), np.nan, dtype=np.float64)
    for k, (n, head) in enumerate(zip(numbers, heads, strict=True)):
        c = class_of.get(head)
        if c is None:
            raise DatasetError(f"{path}:{n}: label {head!r} is not listed in label_list.txt")
        if not np.isnan(out[c, 0]):
            raise DatasetError(f"{path}:{n}: label {head} appears more than once")
        out[c] = values[k]
    missing = [lab for lab, c in class_of.items() if np.isnan(out[c, 0])]
    if missing:
        raise DatasetError(f"{path}: label {missing[0]} of label_list.txt has no attribute row")
    bad = (out < 0) | (out > 1)
    if bad.any():
        c, a = (int(v[0]) for v in np.nonzero(bad))
        lab = next(lab for lab, k in class_of.items() if k == c)
        line = numbers[heads.index(lab)]
        raise DatasetError(f"{path}:{line}: value {out[c, a]:g} (attribute {a + 1}) not in [0, 1]")
    return out.astype(np.float32)


def _images(
    path: Path, class_of: dict[str, int], label_txt: Path
) -> tuple[list[str], np.ndarray, list[str]]:
    ids, labels, rel = [], [], []
    seen: dict[str, int] = {}
    for n, line in read_lines(path):
        fields = _fields(line)
        if len(fields) < 3 or not fields[0] or not fields[-1]:
            raise DatasetError(
                f"{path}:{n}: expected '<image id>, <label>, <box>, <path>', found {line[:60]!r}"
            )
        image_id, label, rel_path = fields[0], fields[1], fields[-1]
        if image_id in seen:
            raise DatasetError(f"{path}:{n}: image id {image_id} repeats line {seen[image_id]}")
        if label not in class_of:
            raise DatasetError(f"{path}:{n}: label {label!r} is not listed in {label_txt.name}")
        seen[image_id] = n
        ids.append(image_id)
        labels.append(class_of[label])
        rel.append(rel_path)
    return ids, np.asarray(labels, dtype=np.int64), rel


def _split(ann: Path, image_ids: list[str], images_txt: Path) -> np.ndarray:
    path = find_file(ann, SPLIT_FILE)
    row_of = {i: k for k, i in enumerate(image_ids)}
    section: str | None = None
    listed: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for n, line in read_lines(path):
        m = _HEADER.match(line)
        if m:
            section, line = m.group(1).lower(), m.group(2)
        elif section is None:
            raise DatasetError(f"{path}:{n}: expected a 'train:' line before the image ids")
        for token in line.replace(",", " ").split():
            if token not in row_of:
                raise DatasetError(
                    f"{path}:{n}: image id {token!r} is not listed in {images_txt.name}"
                )
            assert section is not None
            other = "test" if section == "train" else "train"
            if token in listed[other]:
                raise DatasetError(
                    f"{path}:{n}: image {token} is in both the train and the test list "
                    f"(also line {listed[other][token]})"
                )
            listed[section][token] = n
    split = np.full(len(image_ids), TEST, dtype=np.int8)
    split[[row_of[i] for i in listed["train"]]] = TRAIN
    unlisted = len(image_ids) - len(listed["train"]) - len(listed["test"])
    if unlisted:
        log.warning("%s: %d images in neither list are used as test images", path, unlisted)
    return split


def _image_attributes(
    ann: Path, rel_paths: list[str], labels: np.ndarray, label_ids: list[str], A: int
) -> np.ndarray | None:
    path = ann / "attributes.txt"
    if not path.is_file():
        log.warning("%s not found: no per-image attribute labels", path)
        return None
    numbers, heads, vectors = _vector_rows(path)
    values = _matrix(path, numbers, vectors, A)
    row_of = {p: k for k, p in enumerate(rel_paths)}
    out = np.zeros((len(rel_paths), A), dtype=np.uint8)
    covered = np.zeros(len(rel_paths), dtype=bool)
    ignored = 0
    for k, (n, head) in enumerate(zip(numbers, heads, strict=True)):
        fields = _fields(head)
        if len(fields) < 2:
            raise DatasetError(f"{path}:{n}: expected '<label>, <path>, [ ... ]'")
        label, rel = fields[0], fields[-1]
        r = row_of.get(rel)
        if r is None:
            ignored += 1
            continue
        if label != label_ids[labels[r]]:
            raise DatasetError(
                f"{path}:{n}: {rel} has label {label} here but {label_ids[labels[r]]} in images.txt"
            )
        row = values[k]
        if not np.isin(row, (0, 1)).all():
            raise DatasetError(f"{path}:{n}: per-image attribute values must be 0 or 1")
        out[r] = row.astype(np.uint8)
        covered[r] = True
    if ignored:
        log.warning("%s: %d lines for images not in images.txt ignored", path, ignored)
    if not covered.all():
        log.warning(
            "%s: %d of %d images have no attribute line (first: %s); per-image attributes "
            "are not used",
            path,
            int((~covered).sum()),
            len(rel_paths),
            rel_paths[int(np.argmin(covered))],
        )
        return None
    return out
