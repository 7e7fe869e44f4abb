"""Detections in a zarr group: ragged boxes per image, like the dataset's part boxes.

Schema of one image set's group::

    box_offsets           (n+1,) int64   boxes of image i: rows offsets[i]:offsets[i+1]
    box_xyxy              (M, 4) f32     fractions of width/height, x0,y0,x1,y1
    box_part              (M,)   int64   detected part (object class) index
    box_score             (M,)   f32     detection score in [0, 1]
    box_attribute_scores  (M, A) f32     attribute probabilities in [0, 1]
"""

from __future__ import annotations

from typing import cast

import numpy as np
import zarr

from advinterp.detection.attribute_rcnn import Detections
from advinterp.errors import StoreError
from advinterp.store import write_array

ARRAYS = ("box_offsets", "box_xyxy", "box_part", "box_score", "box_attribute_scores")


def write_detections(group: zarr.Group, det: Detections, chunk_size: int) -> None:
    """Write ``det`` into ``group`` (per-image offsets sharded by ``chunk_size``)."""
    m_chunk = max(1, min(len(det.part), 4096))
    write_array(group, "box_offsets", det.offsets, dims=("sample",), chunk_size=chunk_size)
    write_array(
        group,
        "box_xyxy",
        det.xyxy,
        dims=("box", "coord"),
        chunk_size=m_chunk,
        attrs={"units": "fraction of width/height", "order": "x0,y0,x1,y1"},
    )
    write_array(group, "box_part", det.part, dims=("box",), chunk_size=m_chunk)
    write_array(
        group, "box_score", det.score, dims=("box",), chunk_size=m_chunk, attrs={"range": [0, 1]}
    )
    write_array(
        group,
        "box_attribute_scores",
        det.attribute_scores,
        dims=("box", "attribute"),
        chunk_size=m_chunk,
        attrs={"range": [0, 1], "meaning": "sigmoid of the attribute head"},
    )


def read_detections(group: zarr.Group, origin: str = "detections") -> Detections:
    """Read what :func:`write_detections` wrote; ``origin`` names the group in errors."""
    missing = [a for a in ARRAYS if a not in group]
    if missing:
        raise StoreError(f"{origin}: missing {', '.join(missing)}")
    offsets, xyxy, part, score, attribute_scores = (
        np.asarray(cast(zarr.Array, group[a])[:]) for a in ARRAYS
    )
    return Detections(offsets, xyxy, part, score, attribute_scores)


def read_detection_set(store: zarr.Group, name: str) -> Detections:
    """The detections of image set ``name`` (e.g. ``clean``, ``standard/untargeted``) of a
    ``detect`` store.

    Raises:
        StoreError: naming the store when the set or one of its arrays is missing.
    """
    origin = str(getattr(store.store, "root", store.store))
    if name not in store:
        raise StoreError(f"{origin}: no image set '{name}'; rerun detect")
    return read_detections(cast(zarr.Group, store[name]), f"{origin}/{name}")
