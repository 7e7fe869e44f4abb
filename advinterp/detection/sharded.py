"""Eq. 7 on many images, shard by shard: the detector as a :mod:`advinterp.shards` job.

Shards of a store must line up with its images, but detections are ragged (a variable
number of boxes per image). Workers therefore write each image's boxes padded to the
detector's ``detections_per_img`` cap into a scratch store, one row per image; once
every shard of an image set is done the padded rows are compacted into the ragged
:class:`~advinterp.detection.attribute_rcnn.Detections` readers see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from advinterp.config.core import ScaleConfig
from advinterp.data.batches import iter_batches
from advinterp.detection.attribute_rcnn import Detections, DetectorSpec, detect, load_detector
from advinterp.runtime import Precision
from advinterp.shards import Compute, ShardJob, run_shards
from advinterp.store import ShardMarkers, create_array, decoded, open_store, sample_chunk_size

PADDED = ("count", "xyxy", "part", "score", "attribute_scores")


def padded_arrays(
    group: zarr.Group, n: int, cap: int, num_attributes: int, chunk: int
) -> dict[str, zarr.Array]:
    """Per-image detections padded to ``cap`` boxes (create, or reopen when resuming).

    ``count`` (n,) int64 boxes of each image; ``xyxy`` (n, cap, 4), ``part`` (n, cap),
    ``score`` (n, cap), ``attribute_scores`` (n, cap, A): box j < count[i] of image i.
    """
    layout = {
        "count": ((), "int64", ("sample",)),
        "xyxy": ((cap, 4), "float32", ("sample", "box", "coord")),
        "part": ((cap,), "int64", ("sample", "box")),
        "score": ((cap,), "float32", ("sample", "box")),
        "attribute_scores": ((cap, num_attributes), "float32", ("sample", "box", "attribute")),
    }
    return {
        key: create_array(group, key, (n, *rest), dtype, dims=dims, chunk_size=chunk)
        for key, (rest, dtype, dims) in layout.items()
    }


def pad(det: Detections, cap: int) -> dict[str, np.ndarray]:
    """``det`` in the layout of :func:`padded_arrays` (padding zero).

    Raises:
        RuntimeError: an image has more than ``cap`` boxes (the detector caps them).
    """
    counts = np.diff(det.offsets)
    n = det.num_images
    if n and counts.max() > cap:
        raise RuntimeError(f"bug: {counts.max()} boxes on one image, detections_per_img={cap}")
    keep = np.arange(cap)[None, :] < counts[:, None]  # (n, cap): row-major = ragged order
    out = {"count": counts.astype(np.int64)}
    for key in PADDED[1:]:
        ragged = getattr(det, key)
        out[key] = np.zeros((n, cap, *ragged.shape[1:]), ragged.dtype)
        out[key][keep] = ragged
    return out


def unpad(padded: Mapping[str, np.ndarray]) -> Detections:
    """The ragged :class:`Detections` of :func:`pad`'s layout."""
    counts = np.asarray(padded["count"], np.int64)
    keep = np.arange(padded["part"].shape[1])[None, :] < counts[:, None]
    return Detections(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        xyxy=padded["xyxy"][keep],
        part=padded["part"][keep],
        score=padded["score"][keep],
        attribute_scores=padded["attribute_scores"][keep],
    )


def detect_shard_setup(
    detector: str,
    store: str,
    array: str,
    rows: np.ndarray | None,
    batch_size: int,
    device: str,
    precision: Precision = "fp32",
) -> Compute:
    """Shard setup for :func:`advinterp.shards.run_shards`: padded detections of a shard.

    Args:
        detector: checkpoint of :func:`~advinterp.detection.attribute_rcnn.save_detector`.
        store, array: the images, (N, 3, H, W) float32 in [0, 1]; sample ``i`` of the
            set is ``array[rows[i]]``, or ``array[i]`` when ``rows`` is None.
        precision: ``base.precision`` of the detector's forwards.
    """
    dev = torch.device(device)
    model = load_detector(Path(detector), dev)
    images = decoded(open_store(store), array, store)  # attack sets: encoded
    cap = model.spec.detections_per_img

    def compute(sl: slice) -> dict[str, np.ndarray]:
        if rows is None:
            x = np.asarray(images[sl])
        else:
            batches = iter_batches(images, rows[sl], len(rows[sl]), sample_chunk_size(images))
            x = np.concatenate([b for _, b in batches])
        return pad(detect(model, x, batch_size, dev, precision), cap)

    return compute


@dataclass(frozen=True)
class ImageSet:
    """Images the detector runs on: ``store``'s ``array``, at ``rows`` (None = in order)."""

    name: str
    store: Path
    array: str
    rows: np.ndarray | None = None


def detect_image_set(
    scratch: zarr.Group,
    images: ImageSet,
    detector: Path,
    spec: DetectorSpec,
    n: int,
    *,
    batch_size: int,
    device: torch.device,
    chunk: int,
    scale: ScaleConfig,
    markers: ShardMarkers,
    precision: Precision = "fp32",
) -> Detections:
    """Eq. 7 on the ``n`` images of one set, shard by shard (resumable through ``markers``).

    Args:
        scratch: group for the padded per-image detections (kept for a resume).
        detector: the checkpoint every worker loads; ``spec`` is its spec.
        chunk: images per shard.
        precision: ``base.precision`` of the detector's forwards.
    """
    padded = padded_arrays(scratch, n, spec.detections_per_img, spec.num_attributes, chunk)
    job = ShardJob.of(
        detect_shard_setup,
        str(detector.resolve()),
        str(images.store.resolve()),
        images.array,
        images.rows,
        batch_size,
        str(device),
        precision,
    )
    run_shards(padded, job, n, chunk, scale=scale, markers=markers, desc=f"detect {images.name}")
    return unpad({key: np.asarray(arr[:]) for key, arr in padded.items()})
