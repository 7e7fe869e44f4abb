"""CUB-200-2011 (Wah et al., 2011) read from the directory its users already have.

``root`` is the ``CUB_200_2011`` directory, or the directory ``CUB_200_2011.tgz`` was
extracted into (which holds ``attributes.txt`` beside ``CUB_200_2011/``). Nothing is
downloaded. Files read, relative to the ``CUB_200_2011`` directory:

=============================================  ==========================================
``images.txt``                                 ``<image_id> <path under images/>``
``image_class_labels.txt``                     ``<image_id> <class_id>``
``train_test_split.txt``                       ``<image_id> <is_training_image 0|1>``
``classes.txt``                                ``<class_id> <class_name>``
``attributes.txt`` (also ``attributes/`` or    ``<attribute_id> <group>::<value>``
the parent directory, where the tarball puts
it)
``attributes/class_attribute_labels_           C rows x A columns, percent 0..100, in
continuous.txt``                               classes.txt x attributes.txt order
``attributes/image_attribute_labels.txt``      optional: ``<image_id> <attribute_id>
                                               <is_present> <certainty_id> <time>``
                                               (a few real lines carry extra fields)
``bounding_boxes.txt``                         optional: ``<image_id> <x> <y> <w> <h>``
``parts/parts.txt``, ``parts/part_locs.txt``   optional, together: ``<part_id> <name>``;
                                               ``<image_id> <part_id> <x> <y> <visible>``
``images/<path>``                              the JPEGs
=============================================  ==========================================

What comes out (the one dataset shape, see :mod:`advinterp.data.dataset`):

* splits: the official ``train_test_split.txt``; validation is a per-class random
  ``val_fraction`` of the training images (seeded), as Gulshad et al. use it
  (5395 train / 599 val / 5794 test with ``val_fraction=0.1``). ``test_fraction``
  does not apply: the test set is the official one.
* class attributes: the continuous percentages / 100, in [0, 1].
* image attributes: ``is_present`` of ``image_attribute_labels.txt`` (certainty ignored).
* part boxes: CUB annotates parts as points, not boxes. Each *visible* part point
  becomes a square box centred on it, of side ``PART_BOX_FRACTION`` x the geometric
  mean of the bird's bounding-box sides (``bounding_boxes.txt``; the whole image
  without it), clipped to the image and stored as fractions of width/height. Image
  sizes are read from the JPEG headers (no decoding). A box's attribute labels are
  the image's present attributes whose group belongs to that part
  (:data:`PART_ATTRIBUTE_GROUPS`); the whole-bird groups ``has_size``, ``has_shape``
  and ``has_primary_color`` belong to no part.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from advinterp.data.dataset import TEST, TRAIN, AttributeIndex, PartBoxes, carve_validation
from advinterp.data.tables import (
    as_ids,
    check_cells,
    check_ids,
    find_file,
    map_ids,
    read_class_matrix,
    read_id_names,
    read_numbers,
    row_line,
)
from advinterp.errors import DatasetError

log = logging.getLogger(__name__)

PART_BOX_FRACTION = 0.25
"""Side of a part box relative to the geometric mean of the bird box's sides."""

# CUB's 15 parts -> the attribute groups (the text before "::") that describe them.
# Eyes, legs and wings come in left/right pairs that share their groups; "upperparts"
# covers back and nape, "underparts" breast and belly, "head_pattern" crown and forehead.
PART_ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "back": ("has_back_color", "has_back_pattern", "has_upperparts_color"),
    "beak": ("has_bill_shape", "has_bill_length", "has_bill_color"),
    "belly": ("has_belly_color", "has_belly_pattern", "has_underparts_color"),
    "breast": ("has_breast_color", "has_breast_pattern", "has_underparts_color"),
    "crown": ("has_crown_color", "has_head_pattern"),
    "forehead": ("has_forehead_color", "has_head_pattern"),
    "left eye": ("has_eye_color",),
    "left leg": ("has_leg_color",),
    "left wing": ("has_wing_color", "has_wing_shape", "has_wing_pattern"),
    "nape": ("has_nape_color", "has_upperparts_color"),
    "right eye": ("has_eye_color",),
    "right leg": ("has_leg_color",),
    "right wing": ("has_wing_color", "has_wing_shape", "has_wing_pattern"),
    "tail": ("has_tail_shape", "has_tail_pattern", "has_upper_tail_color", "has_under_tail_color"),
    "throat": ("has_throat_color",),
}


def locate_root(root: Path) -> Path:
    """The ``CUB_200_2011`` directory: ``root`` itself or ``root/CUB_200_2011``."""
    root = Path(root)
    if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
        return root / "CUB_200_2011"
    return root


def read_index(
    root: Path, val_fraction: float, test_fraction: float, seed: int
) -> tuple[AttributeIndex, list[Path]]:
    """Read a CUB-200-2011 directory (see the module docstring for the files).

    Returns:
        The index and the image paths in index order.

    Raises:
        DatasetError: naming the missing or malformed file (and line).
    """
    cub = locate_root(root)
    images_txt = find_file(cub, "images.txt")
    image_ids, rel_paths, _ = read_id_names(images_txt)
    paths = [cub / "images" / p for p in rel_paths]

    classes_txt = find_file(cub, "classes.txt")
    class_ids, class_names, _ = read_id_names(classes_txt)

    labels_txt = find_file(cub, "image_class_labels.txt")
    table = _int_table(labels_txt, 2, "id")
    rows = check_ids(labels_txt, table[:, 0], image_ids, images_txt, "image id", complete=True)
    cls = check_ids(labels_txt, table[:, 1], class_ids, classes_txt, "class id", complete=False)
    labels = np.empty(len(image_ids), dtype=np.int64)
    labels[rows] = cls

    split_txt = find_file(cub, "train_test_split.txt")
    table = _int_table(split_txt, 2, "value")
    rows = check_ids(split_txt, table[:, 0], image_ids, images_txt, "image id", complete=True)
    _check_flags(split_txt, table[:, 1], "is_training_image")
    split = np.empty(len(image_ids), dtype=np.int8)
    split[rows] = np.where(table[:, 1] == 1, TRAIN, TEST)
    split = carve_validation(labels, split, val_fraction, seed)
    log.info("CUB: official train/test split; val = %.0f%% of train", 100 * val_fraction)

    attributes_txt = find_file(
        cub, "attributes.txt", "attributes/attributes.txt", "../attributes.txt"
    )
    attribute_ids, attribute_names, _ = read_id_names(attributes_txt)
    class_attributes = _class_attributes(cub, len(class_names), len(attribute_names))

    image_attributes = _image_attributes(cub, image_ids, images_txt, attribute_ids, attributes_txt)
    parts = _part_boxes(cub, image_ids, images_txt, paths, attribute_names, image_attributes)
    classes = (class_names, attribute_names, class_attributes)
    index = AttributeIndex.read("cub", image_ids, labels, split, classes, image_attributes, parts)
    return index, paths


def _int_table(path: Path, columns: int, what: str) -> np.ndarray:
    values = read_numbers(path, usecols=range(columns))
    return np.stack([as_ids(values[:, j], path, what) for j in range(columns)], axis=1)


def _check_flags(path: Path, flags: np.ndarray, what: str) -> None:
    bad = ~np.isin(flags, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{path}:{row_line(path, row)}: {what} must be 0 or 1, found {flags[row]}"
        )


def _class_attributes(cub: Path, C: int, A: int) -> np.ndarray:
    path = find_file(cub, "attributes/class_attribute_labels_continuous.txt")
    values = read_class_matrix(path, C, A, "class-attribute matrix", "attributes in attributes.txt")
    check_cells(path, values, (values < 0) | (values > 100), "not a percentage in [0, 100]")
    return (values / 100.0).astype(np.float32)


def _image_attributes(
    cub: Path,
    image_ids: np.ndarray,
    images_txt: Path,
    attribute_ids: np.ndarray,
    attributes_txt: Path,
) -> np.ndarray | None:
    path = cub / "attributes" / "image_attribute_labels.txt"
    if not path.is_file():
        log.warning("%s not found: no per-image attribute labels", path)
        return None
    # Only the first three fields: some lines of the real file carry extra fields.
    values = read_numbers(path, usecols=(0, 1, 2))
    img = as_ids(values[:, 0], path, "image id")
    att = as_ids(values[:, 1], path, "attribute id")
    present = as_ids(values[:, 2], path, "is_present")
    _check_flags(path, present, "is_present")
    rows = check_ids(path, img, image_ids, images_txt, "image id", complete=False)
    cols = check_ids(path, att, attribute_ids, attributes_txt, "attribute id", complete=False)
    out = np.zeros((len(image_ids), len(attribute_ids)), dtype=np.uint8)
    out[rows, cols] = present.astype(np.uint8)
    return out


def _part_boxes(
    cub: Path,
    image_ids: np.ndarray,
    images_txt: Path,
    paths: list[Path],
    attribute_names: list[str],
    image_attributes: np.ndarray | None,
) -> tuple[list[str], PartBoxes | None]:
    parts_txt, locs_txt = cub / "parts" / "parts.txt", cub / "parts" / "part_locs.txt"
    if not parts_txt.is_file() and not locs_txt.is_file():
        log.warning("%s not found: no part boxes", cub / "parts")
        return [], None
    part_ids, part_names, _ = read_id_names(find_file(cub, "parts/parts.txt"))
    locs_txt = find_file(cub, "parts/part_locs.txt")
    values = read_numbers(locs_txt, usecols=range(5))
    img = map_ids(locs_txt, values[:, 0], image_ids, images_txt, "image id", complete=False)
    part = map_ids(locs_txt, values[:, 1], part_ids, parts_txt, "part id", complete=False)
    visible = as_ids(values[:, 4], locs_txt, "visible")
    _check_flags(locs_txt, visible, "visible")
    N, P = len(image_ids), len(part_ids)
    flat = img * P + part
    uniq, first = np.unique(flat, return_index=True)
    if len(uniq) != len(flat):
        dup = np.setdiff1d(np.arange(len(flat)), first)[0]
        raise DatasetError(
            f"{locs_txt}:{row_line(locs_txt, int(dup))}: image {image_ids[img[dup]]} part "
            f"{part_ids[part[dup]]} appears more than once"
        )
    seen = visible == 1
    points = np.full((N, P, 2), np.nan)
    points[img[seen], part[seen]] = values[seen, 2:4]

    sizes = np.array([_image_size(p) for p in paths], dtype=np.float64)  # (N, 2) w, h
    bird = _bird_boxes(cub, image_ids, images_txt, sizes)
    return part_names, _boxes(
        points, sizes, bird, _part_masks(part_names, attribute_names), image_attributes
    )


def _bird_boxes(
    cub: Path, image_ids: np.ndarray, images_txt: Path, sizes: np.ndarray
) -> np.ndarray:
    """(N, 2) width and height of each bird's box (the image where unknown)."""
    path = cub / "bounding_boxes.txt"
    if not path.is_file():
        log.warning("%s not found: part boxes are sized relative to the image", path)
        return sizes.copy()
    values = read_numbers(path, usecols=range(5))
    rows = map_ids(path, values[:, 0], image_ids, images_txt, "image id", complete=True)
    wh = np.empty((len(image_ids), 2))
    wh[rows] = values[:, 3:5]
    if (wh <= 0).any():
        row = int(np.flatnonzero((values[:, 3:5] <= 0).any(axis=1))[0])
        raise DatasetError(f"{path}:{row_line(path, row)}: box width and height must be positive")
    return wh


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found (listed in images.txt)") from None
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as err:
        raise DatasetError(f"{path}: not a readable image ({err})") from None


def _part_masks(part_names: list[str], attribute_names: list[str]) -> np.ndarray:
    """(P, A) bool: which attributes each part's box is labelled with."""
    groups = np.array([name.split("::", 1)[0] for name in attribute_names])
    masks = np.zeros((len(part_names), len(attribute_names)), dtype=bool)
    for p, name in enumerate(part_names):
        wanted = PART_ATTRIBUTE_GROUPS.get(name.lower().strip())
        if wanted is None:
            log.warning("CUB part %r has no attribute groups; its boxes carry no attributes", name)
            continue
        masks[p] = np.isin(groups, wanted)
    return masks


def _boxes(
    points: np.ndarray,
    sizes: np.ndarray,
    bird: np.ndarray,
    masks: np.ndarray,
    image_attributes: np.ndarray | None,
) -> PartBoxes:
    """Square boxes around visible part points, as fractions of the image.

    Shape:
        points: (N, P, 2) float pixel (x, y), NaN where the part is not visible.
        sizes, bird: (N, 2) float (width, height) of the image / the bird box.
        masks: (P, A) bool.
    """
    N = points.shape[0]
    img, part = np.nonzero(np.isfinite(points[..., 0]))  # row-major: by image, then part
    W, H = sizes[img, 0], sizes[img, 1]
    half = 0.5 * PART_BOX_FRACTION * np.sqrt(bird[img, 0] * bird[img, 1])
    x = np.clip(points[img, part, 0], 0, W)
    y = np.clip(points[img, part, 1], 0, H)
    xyxy = np.stack(
        [
            np.clip(x - half, 0, W) / W,
            np.clip(y - half, 0, H) / H,
            np.clip(x + half, 0, W) / W,
            np.clip(y + half, 0, H) / H,
        ],
        axis=1,
    ).astype(np.float32)
    A = masks.shape[1]
    if image_attributes is None:
        attrs = np.zeros((len(img), A), dtype=np.uint8)
    else:
        attrs = (image_attributes[img].astype(bool) & masks[part]).astype(np.uint8)
    counts = np.bincount(img, minlength=N)
    return PartBoxes(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        xyxy=xyxy,
        part=part.astype(np.int64),
        attributes=attrs,
    )


__all__ = ["PART_ATTRIBUTE_GROUPS", "PART_BOX_FRACTION", "locate_root", "read_index"]
