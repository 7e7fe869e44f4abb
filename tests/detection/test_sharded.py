"""Eq. 7 shard by shard: the padded layout, its round trip, and equality with one direct run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from zarr.storage import MemoryStore

from advinterp.config.core import ScaleConfig
from advinterp.detection.attribute_rcnn import (
    Detections,
    DetectorSpec,
    build_detector,
    detect,
    save_detector,
)
from advinterp.detection.sharded import (
    ImageSet,
    detect_image_set,
    detect_shard_setup,
    pad,
    padded_arrays,
    unpad,
)
from advinterp.store import ShardMarkers, create_group, write_array

SIZE = 32
CPU = torch.device("cpu")


def _ragged(counts: list[int], num_attributes: int = 3) -> Detections:
    counts_ = np.array(counts)
    m = int(counts_.sum())
    rng = np.random.default_rng(0)
    return Detections(
        offsets=np.concatenate([[0], np.cumsum(counts_)]),
        xyxy=rng.random((m, 4), dtype=np.float32),
        part=rng.integers(0, 5, m),
        score=rng.random(m, dtype=np.float32),
        attribute_scores=rng.random((m, num_attributes), dtype=np.float32),
    )


def test_padded_detections_round_trip_to_the_ragged_layout():
    det = _ragged([0, 3, 1, 4])
    padded = pad(det, 4)
    assert padded["xyxy"].shape == (4, 4, 4) and padded["attribute_scores"].shape == (4, 4, 3)
    np.testing.assert_array_equal(padded["count"], [0, 3, 1, 4])
    np.testing.assert_array_equal(padded["part"][1, :3], det.part[0:3])  # image 1's boxes
    np.testing.assert_array_equal(padded["score"][3], det.score[4:8])
    assert np.all(padded["xyxy"][0] == 0) and np.all(padded["score"][2, 1:] == 0)  # padding
    back = unpad(padded)
    for key in ("offsets", "xyxy", "part", "score", "attribute_scores"):
        np.testing.assert_array_equal(getattr(back, key), getattr(det, key), err_msg=key)
        assert getattr(back, key).dtype == getattr(det, key).dtype, key
    with pytest.raises(RuntimeError, match="detections_per_img=3"):
        pad(det, 3)


def test_padded_arrays_layout():
    group = zarr.open_group(store=MemoryStore(), mode="w", zarr_format=3)
    arrays = padded_arrays(group, 10, 6, 7, 4)
    assert {k: a.shape for k, a in arrays.items()} == {
        "count": (10,),
        "xyxy": (10, 6, 4),
        "part": (10, 6),
        "score": (10, 6),
        "attribute_scores": (10, 6, 7),
    }
    assert arrays["part"].dtype == np.int64 and arrays["score"].dtype == np.float32
    again = padded_arrays(group, 10, 6, 7, 4)  # a resumed run reopens them
    assert again["xyxy"].shape == (10, 6, 4)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A saved untrained detector and a store of 10 images."""
    root = tmp_path_factory.mktemp("sharded")
    torch.manual_seed(0)
    spec = DetectorSpec(num_classes=5, num_attributes=7, image_size=SIZE, detections_per_img=6)
    model = build_detector(spec).eval()
    save_detector(root / "det.pt", model)
    images = np.random.default_rng(1).random((10, 3, SIZE, SIZE), dtype=np.float32)
    group = create_group(root / "images.zarr")
    write_array(group, "x", images, dims=("sample", "c", "y", "x"), chunk_size=4)
    return root, model, images


def test_shard_setup_computes_the_padded_detections_of_a_slice(world):
    root, model, images = world
    compute = detect_shard_setup(
        str(root / "det.pt"), str(root / "images.zarr"), "x", None, 3, "cpu"
    )
    got = unpad(compute(slice(4, 8)))
    want = detect(model, images[4:8], 3, CPU)
    np.testing.assert_array_equal(got.offsets, want.offsets)
    np.testing.assert_array_equal(got.attribute_scores, want.attribute_scores)
    rows = np.array([9, 0, 5])  # a set that reads another store's rows, in its order
    compute = detect_shard_setup(
        str(root / "det.pt"), str(root / "images.zarr"), "x", rows, 3, "cpu"
    )
    got = unpad(compute(slice(1, 3)))
    want = detect(model, images[[0, 5]], 3, CPU)
    np.testing.assert_array_equal(got.xyxy, want.xyxy)


def test_detect_image_set_equals_one_direct_run(world, tmp_path):
    root, model, images = world
    scratch = zarr.open_group(str(tmp_path / "padded.zarr"), mode="a", zarr_format=3)
    det = detect_image_set(
        scratch,
        ImageSet("clean", root / "images.zarr", "x"),
        root / "det.pt",
        model.spec,
        10,
        batch_size=4,
        device=CPU,
        chunk=4,
        scale=ScaleConfig(),
        markers=ShardMarkers(tmp_path / "markers"),
    )
    want = detect(model, images, 4, CPU)
    for key in ("offsets", "xyxy", "part", "score", "attribute_scores"):
        np.testing.assert_array_equal(getattr(det, key), getattr(want, key), err_msg=key)
    assert len(list((tmp_path / "markers").glob("*.done"))) == 3  # 10 images, shards of 4
