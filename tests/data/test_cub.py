"""CUB-200-2011 reader on a tiny directory in the real layout, valid and broken."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from advinterp.config.dataset import DatasetConfig
from advinterp.data.artifact import open_dataset
from advinterp.data.artifact import read_index as read_store_index
from advinterp.data.cub import PART_ATTRIBUTE_GROUPS, PART_BOX_FRACTION, read_index
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.data.sources import open_source
from advinterp.errors import DatasetError
from tests.data.layouts import (
    CUB_ATTRIBUTES,
    CUB_CLASSES,
    CUB_PARTS,
    make_cub,
    rewrite_line,
)


@pytest.fixture
def cub(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, make_cub(tmp_path)


def _read(root: Path, val_fraction: float = 0.34):
    return read_index(root, val_fraction, 0.3, seed=0)


def test_reads_labels_names_split_and_attributes(cub):
    root, e = cub
    index, paths = _read(root)  # the tarball's parent directory
    cub_dir = root / "CUB_200_2011"
    assert index.class_names == CUB_CLASSES
    assert index.attribute_names == CUB_ATTRIBUTES
    np.testing.assert_array_equal(index.labels, e["labels"])
    assert paths == [cub_dir / "images" / p for p in e["paths"]]
    assert index.sample_ids == [str(i + 1) for i in range(len(paths))]
    # official test images stay test; val comes out of the official training images
    np.testing.assert_array_equal(index.split == TEST, e["is_train"] == 0)
    for c in range(len(CUB_CLASSES)):
        in_class = index.labels == c
        assert (index.split[in_class] == VAL).sum() == 1  # round(0.34 * 3)
        assert (index.split[in_class] == TRAIN).sum() == 2
    np.testing.assert_allclose(index.class_attributes, e["percent"] / 100, atol=1e-6)
    assert index.class_attributes.dtype == np.float32
    np.testing.assert_array_equal(index.image_attributes, e["present"])
    index.validate("cub")


def test_root_may_be_the_cub_directory_itself(cub):
    root, _ = cub
    shutil.copy(root / "attributes.txt", root / "CUB_200_2011" / "attributes" / "attributes.txt")
    (root / "attributes.txt").unlink()
    index, _ = _read(root / "CUB_200_2011")
    assert index.attribute_names == CUB_ATTRIBUTES


def test_validation_carving_is_seeded(cub):
    root, _ = cub
    a, _ = read_index(root, 0.34, 0.3, seed=1)
    b, _ = read_index(root, 0.34, 0.3, seed=1)
    np.testing.assert_array_equal(a.split, b.split)
    splits = {tuple(read_index(root, 0.34, 0.3, seed=s)[0].split) for s in range(6)}
    assert len(splits) > 1


def test_part_points_become_boxes_with_part_attributes(cub):
    root, e = cub
    index, _ = _read(root)
    b = index.boxes
    assert b is not None and index.part_names == CUB_PARTS
    np.testing.assert_array_equal(np.diff(b.offsets), e["visible"].sum(axis=1))
    assert b.xyxy.min() >= 0 and b.xyxy.max() <= 1
    assert np.all(b.xyxy[:, 2] > b.xyxy[:, 0]) and np.all(b.xyxy[:, 3] > b.xyxy[:, 1])
    half = 0.5 * PART_BOX_FRACTION * np.sqrt(30.0 * 24.0)  # bird box is 30 x 24 px
    groups = [n.split("::")[0] for n in CUB_ATTRIBUTES]
    for i in range(index.num_samples):
        rows = b.of(i)
        parts = b.part[rows]
        np.testing.assert_array_equal(parts, np.flatnonzero(e["visible"][i]))
        W, H = e["sizes"][i]
        for k, p in zip(range(rows.start, rows.stop), parts, strict=True):
            x, y = e["points"][i, p]
            expect = [max(x - half, 0) / W, max(y - half, 0) / H,
                      min(x + half, W) / W, min(y + half, H) / H]  # fmt: skip
            np.testing.assert_allclose(b.xyxy[k], expect, atol=1e-5)
            wanted = PART_ATTRIBUTE_GROUPS[CUB_PARTS[p]]
            mask = np.array([g in wanted for g in groups])
            np.testing.assert_array_equal(b.attributes[k], e["present"][i] & mask)


def test_box_attributes_follow_the_documented_part_mapping(cub):
    root, e = cub
    index, _ = _read(root)
    b = index.boxes
    beak = CUB_PARTS.index("beak")
    size_col = CUB_ATTRIBUTES.index("has_size::large_(16_-_32_in)")
    bill_col = CUB_ATTRIBUTES.index("has_bill_shape::hooked_seabird")
    assert b.attributes[:, size_col].sum() == 0  # whole-bird attributes belong to no part
    beak_rows = b.part == beak
    assert beak_rows.sum() == index.num_samples  # every beak is visible in the fixture
    img_of_box = np.repeat(np.arange(index.num_samples), np.diff(b.offsets))
    np.testing.assert_array_equal(
        b.attributes[beak_rows, bill_col], e["present"][img_of_box[beak_rows], bill_col]
    )
    assert b.attributes[beak_rows][:, [c for c in range(6) if c != bill_col]].sum() == 0


def test_without_bounding_boxes_part_boxes_scale_with_the_image(cub):
    root, e = cub
    (root / "CUB_200_2011" / "bounding_boxes.txt").unlink()
    index, _ = _read(root)
    b = index.boxes
    i = 0
    W, H = e["sizes"][i]
    k = b.offsets[i]
    p = b.part[k]
    half = 0.5 * PART_BOX_FRACTION * np.sqrt(W * H)
    x, _ = e["points"][i, p]
    np.testing.assert_allclose(b.xyxy[k, 0], max(x - half, 0) / W, atol=1e-5)


def test_optional_files_may_be_absent(cub):
    root, _ = cub
    shutil.rmtree(root / "CUB_200_2011" / "parts")
    (root / "CUB_200_2011" / "attributes" / "image_attribute_labels.txt").unlink()
    index, _ = _read(root)
    assert index.boxes is None and index.image_attributes is None and index.part_names == []
    index.validate("cub")


# --------------------------------------------------------------------------- broken layouts

CUB = "CUB_200_2011"


@pytest.mark.parametrize(
    ("rel", "match"),
    [
        (f"{CUB}/images.txt", r"images\.txt: missing index file"),
        (f"{CUB}/classes.txt", r"classes\.txt: missing index file"),
        (f"{CUB}/image_class_labels.txt", r"image_class_labels\.txt: missing"),
        (f"{CUB}/train_test_split.txt", r"train_test_split\.txt: missing"),
        ("attributes.txt", r"attributes\.txt: missing index file"),
        (f"{CUB}/attributes/class_attribute_labels_continuous.txt", "continuous.txt: missing"),
        (f"{CUB}/parts/part_locs.txt", r"part_locs\.txt: missing"),
        (f"{CUB}/parts/parts.txt", r"parts\.txt: missing"),
    ],
)
def test_missing_index_file(cub, rel, match):
    root, _ = cub
    (root / rel).unlink()
    with pytest.raises(DatasetError, match=match):
        _read(root)


@pytest.mark.parametrize(
    ("rel", "line", "text", "match"),
    [
        ("image_class_labels.txt", 3, "3 x", r"image_class_labels\.txt:3: malformed line"),
        ("image_class_labels.txt", 3, "3", r"image_class_labels\.txt:3: malformed line"),
        ("image_class_labels.txt", 3, "99 1", r"image_class_labels\.txt:3: image id 99 is not listed in images\.txt"),
        ("image_class_labels.txt", 3, "3 7", r"image_class_labels\.txt:3: class id 7 is not listed in classes\.txt"),
        ("image_class_labels.txt", 3, "3 1.5", r"image_class_labels\.txt:3: id 1\.5 is not an integer"),
        ("image_class_labels.txt", 3, None, r"image_class_labels\.txt: image id 3 of images\.txt has no entry"),
        ("image_class_labels.txt", 3, "2 1", r"image_class_labels\.txt:3: image id 2 appears more than once"),
        ("train_test_split.txt", 5, "5 2", r"train_test_split\.txt:5: is_training_image must be 0 or 1"),
        ("train_test_split.txt", 5, None, r"train_test_split\.txt: image id 5 of images\.txt has no entry"),
        ("images.txt", 4, "3 again.jpg", r"images\.txt:4: id 3 repeats line 3"),
        ("images.txt", 4, "four", r"images\.txt:4: expected '<id> <name>'"),
        ("images.txt", 4, "-4 x.jpg", r"images\.txt:4: id -4 out of range"),
        ("classes.txt", 2, "two 002.Laysan_Albatross", r"classes\.txt:2: id 'two' is not an integer"),
        ("attributes/class_attribute_labels_continuous.txt", 2, "1 2 3", r"continuous\.txt:2: malformed line"),
        ("attributes/class_attribute_labels_continuous.txt", 2, "1 2 nan 4 5 6", r"continuous\.txt:2: NaN or infinite"),
        ("attributes/class_attribute_labels_continuous.txt", 2, "1 2 inf 4 5 6", r"continuous\.txt:2: NaN or infinite"),
        ("attributes/class_attribute_labels_continuous.txt", 3, "1 2 150 4 5 6", r"continuous\.txt:3: value 150 in column 3 is not a percentage"),
        ("attributes/class_attribute_labels_continuous.txt", 3, None, r"continuous\.txt: class-attribute matrix is 2 x 6, expected 3 x 6"),
        ("attributes/image_attribute_labels.txt", 7, "2 1 3 3 1.0", r"image_attribute_labels\.txt:7: is_present must be 0 or 1"),
        ("attributes/image_attribute_labels.txt", 7, "2 9 1 3 1.0", r"image_attribute_labels\.txt:7: attribute id 9 is not listed in attributes\.txt"),
        ("parts/part_locs.txt", 2, "1 16 3.0 4.0 1", r"part_locs\.txt:2: part id 16 is not listed in parts\.txt"),
        ("parts/part_locs.txt", 2, "1 1 3.0 4.0 1", r"part_locs\.txt:2: image 1 part 1 appears more than once"),
        ("parts/part_locs.txt", 2, "1 2 3.0 4.0 7", r"part_locs\.txt:2: visible must be 0 or 1"),
        ("bounding_boxes.txt", 2, "2 1 1 0 5", r"bounding_boxes\.txt:2: box width and height must be positive"),
    ],
)  # fmt: skip
def test_malformed_index_file(cub, rel, line, text, match):
    root, _ = cub
    rewrite_line(root / CUB / rel, line, text)
    with pytest.raises(DatasetError, match=match):
        _read(root)


def test_attribute_count_disagrees_with_matrix(cub):
    root, _ = cub
    rewrite_line(root / "attributes.txt", 6, None)
    with pytest.raises(
        DatasetError, match=r"continuous\.txt: class-attribute matrix is 3 x 6, expected 3 x 5"
    ):
        _read(root)


def test_not_utf8_and_empty_files(cub):
    root, _ = cub
    (root / CUB / "classes.txt").write_bytes(b"1 caf\xe9\n")
    with pytest.raises(DatasetError, match=r"classes\.txt:1: not UTF-8"):
        _read(root)
    (root / CUB / "classes.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match=r"classes\.txt: the file is empty"):
        _read(root)


def test_missing_and_corrupt_image_files(cub):
    root, e = cub
    img = root / CUB / "images" / e["paths"][4]
    img.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match=rf"{img.name}: not a readable image"):
        _read(root)
    img.unlink()
    with pytest.raises(DatasetError, match=rf"{img.name}: image file not found"):
        _read(root)


def _cfg(root: Path, **kw) -> DatasetConfig:
    return DatasetConfig(source="cub", root=root, image_size=16, val_fraction=0.34, **kw)


def test_open_source_validates_and_loads_pixels(cub):
    root, _ = cub
    _, images = open_source(_cfg(root), seed=0)
    x = images.load([0, 5])
    assert x.shape == (2, 3, 16, 16) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    sub, _ = open_source(_cfg(root, max_images=6), seed=0)
    assert sub.num_samples == 6 and sub.boxes is not None
    assert len(sub.boxes.offsets) == 7


def test_empty_test_split_is_an_error(cub):
    root, _ = cub
    path = root / CUB / "train_test_split.txt"
    path.write_text(path.read_text().replace(" 0\n", " 1\n"))
    with pytest.raises(DatasetError, match="the test split is empty"):
        open_source(_cfg(root), seed=0)


# --------------------------------------------------------------------------- the dataset stage


def _stage(tmp_path: Path, root: Path, out: Path, monkeypatch) -> int:
    from stages import dataset as stage

    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "base": {"seed": 0, "device": "cpu", "num_threads": 1, "chunk_size": 4},
                "dataset": {
                    "source": "cub",
                    "root": str(root),
                    "image_size": 16,
                    "val_fraction": 0.34,
                },
            }
        )
    )
    # Outside the pipeline: no validate stage ran, so its facts input is absent ("-").
    argv = ["dataset", "--params", str(params), "--out", str(out), "--validated", "-"]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        stage.run(stage.STAGE, stage.main)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def test_dataset_stage_writes_a_valid_store_from_cub(cub, tmp_path, monkeypatch):
    root, e = cub
    out = tmp_path / "out" / "dataset.zarr"
    assert _stage(tmp_path, root, out, monkeypatch) == 0
    group = open_dataset(out)
    index = read_store_index(group)
    index.validate(str(out))
    assert group["images"].shape == (12, 3, 16, 16)
    np.testing.assert_array_equal(index.labels, e["labels"])
    np.testing.assert_allclose(index.class_attributes, e["percent"] / 100, atol=1e-6)
    np.testing.assert_array_equal(index.image_attributes, e["present"])
    assert index.boxes is not None and len(index.boxes.part) == e["visible"].sum()
    assert index.part_names == CUB_PARTS and index.name == "cub"


def test_dataset_stage_exits_2_and_writes_nothing_on_a_broken_layout(cub, tmp_path, monkeypatch):
    root, _ = cub
    rewrite_line(root / CUB / "image_class_labels.txt", 2, "2 x")
    out = tmp_path / "out" / "dataset.zarr"
    assert _stage(tmp_path, root, out, monkeypatch) == 2
    assert not out.exists()
    assert not list(out.parent.glob(".*tmp-*"))
