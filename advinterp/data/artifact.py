"""The dataset artifact: an :class:`AttributeIndex` plus its images in one zarr store.

Schema (all per-sample arrays sharded along axis 0):

==================  ===============  =========================================
array               shape / dtype    meaning
==================  ===============  =========================================
images              (N,C,S,S) f32    pixels in [0, 1] (C = 3 RGB, 1 grey)
labels              (N,) i64         class index
split               (N,) i8          0 train, 1 val, 2 test
image_attributes    (N,A) u8         per-image attribute labels (if known)
class_attributes    (C,A) f32        class-attribute matrix in [0, 1]
box_offsets         (N+1,) i64       boxes of image i: rows offsets[i]:offsets[i+1]
box_xyxy            (M,4) f32        part boxes, fractions of width/height
box_part            (M,) i64         part index
box_attributes      (M,A) u8         attributes visible in the box
==================  ===============  =========================================

Group attrs hold the class, attribute and part names and the dataset's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from advinterp.data.dataset import AttributeIndex, ImageSource, PartBoxes
from advinterp.errors import DatasetError
from advinterp.progress import track
from advinterp.store import (
    create_array,
    create_group,
    open_store,
    read_array,
    require_array,
    sample_chunk_size,
    shard_slices,
    str_list_attr,
    write_array,
)

REQUIRED = {"images": 4, "labels": 1, "split": 1, "class_attributes": 2}


def write_dataset(
    path: Path | str,
    index: AttributeIndex,
    source: ImageSource,
    chunk_size: int,
    provenance: dict[str, Any],
) -> zarr.Group:
    """Write index and images to a new store at ``path``, one shard of images at a time."""
    n, S = index.num_samples, source.image_size
    # The channel count is the source's (3 for RGB sources, 1 for the digits): read it
    # off the first shard, which is written first anyway.
    first = source.load(range(0, min(n, chunk_size)))
    channels = first.shape[1]
    group = create_group(
        path,
        {
            "name": index.name,
            "class_names": index.class_names,
            "attribute_names": index.attribute_names,
            "part_names": index.part_names,
            "sample_ids": index.sample_ids,
            "params": provenance,
        },
    )
    images = create_array(
        group,
        "images",
        (n, channels, S, S),
        "float32",
        dims=("sample", "channel", "y", "x"),
        chunk_size=chunk_size,
        attrs={"range": [0.0, 1.0], "units": "RGB intensity" if channels == 3 else "intensity"},
    )
    for k, sl in enumerate(track(shard_slices(n, chunk_size), desc="images", unit="shard")):
        images[sl] = first if k == 0 else source.load(range(sl.start, sl.stop))
    C = index.class_attributes.shape[0]
    # (name, values, dims, chunk size, attrs), written in this order.
    arrays: list[tuple[str, np.ndarray, tuple[str, ...], int, dict[str, Any] | None]] = [
        ("labels", index.labels.astype(np.int64), ("sample",), chunk_size, None),
        (
            "split",
            index.split.astype(np.int8),
            ("sample",),
            chunk_size,
            {"codes": {"train": 0, "val": 1, "test": 2}},
        ),
        (
            "class_attributes",
            index.class_attributes.astype(np.float32),
            ("class", "attribute"),
            max(C, 1),
            {"range": [0.0, 1.0]},
        ),
    ]
    if index.image_attributes is not None:
        image_attributes = index.image_attributes.astype(np.uint8)
        arrays.append(
            ("image_attributes", image_attributes, ("sample", "attribute"), chunk_size, None)
        )
    if index.boxes is not None:
        b = index.boxes
        m_chunk = max(1, min(len(b.part), 4096))
        box_units = {"units": "fraction of width/height", "order": "x0,y0,x1,y1"}
        arrays += [
            ("box_offsets", b.offsets.astype(np.int64), ("sample",), chunk_size, None),
            ("box_xyxy", b.xyxy.astype(np.float32), ("box", "coord"), m_chunk, box_units),
            ("box_part", b.part.astype(np.int64), ("box",), m_chunk, None),
            ("box_attributes", b.attributes.astype(np.uint8), ("box", "attribute"), m_chunk, None),
        ]
    for name, values, dims, chunk, attrs in arrays:
        write_array(group, name, values, dims=dims, chunk_size=chunk, attrs=attrs)
    return group


def open_dataset(path: Path | str) -> zarr.Group:
    """Open a dataset store, checking its schema."""
    return open_store(path, REQUIRED)


@dataclass(frozen=True)
class DatasetArtifact:
    """A dataset store opened for reading: its index in memory, its pixels on disk.

    Shape:
        images: (N, C, S, S) float32 in [0, 1] (C = 3 or 1): a zarr array read lazily, shard by shard
            (any array-like in tests); ``chunk`` samples per read, its storage shard.
    """

    index: AttributeIndex
    images: Any
    chunk: int

    @property
    def num_classes(self) -> int:
        return len(self.index.class_names)


def load_dataset(path: Path | str) -> DatasetArtifact:
    """Open a dataset store and read its index (schema and consistency checked)."""
    group = open_dataset(path)
    images = require_array(group, "images", str(path))
    return DatasetArtifact(read_index(group), images, sample_chunk_size(images))


def read_index(group: zarr.Group, origin: str | None = None) -> AttributeIndex:
    """Everything but the pixels, read into memory and validated.

    Raises:
        DatasetError: naming the store (``origin``, default its path) when labels,
            splits, attributes or boxes are inconsistent (e.g. a label out of range,
            an empty split, NaN in the class-attribute matrix).
    """
    if origin is None:
        origin = str(getattr(group.store, "root", group.store))
    attrs = group.attrs
    for key in ("class_names", "attribute_names"):
        if key not in attrs:
            raise DatasetError(f"{origin}: the dataset store has no '{key}' attribute")
    boxes = None
    if "box_offsets" in group:
        for name in ("box_xyxy", "box_part", "box_attributes"):
            if name not in group:
                raise DatasetError(f"{origin}: missing array '{name}' (box_offsets is there)")
        boxes = PartBoxes(
            offsets=read_array(group, "box_offsets", origin),
            xyxy=read_array(group, "box_xyxy", origin),
            part=read_array(group, "box_part", origin),
            attributes=read_array(group, "box_attributes", origin),
        )
    index = AttributeIndex(
        name=str(attrs.get("name", "")),
        labels=read_array(group, "labels", origin),
        split=read_array(group, "split", origin),
        class_names=str_list_attr(group, "class_names", origin),
        attribute_names=str_list_attr(group, "attribute_names", origin),
        class_attributes=read_array(group, "class_attributes", origin),
        image_attributes=(
            read_array(group, "image_attributes", origin) if "image_attributes" in group else None
        ),
        part_names=str_list_attr(group, "part_names", origin, default=[]),
        boxes=boxes,
        sample_ids=str_list_attr(group, "sample_ids", origin, default=[]),
    )
    index.validate(origin)
    return index
