"""LAD reader on a tiny directory in the real layout, valid and broken."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from advinterp.config.dataset import DatasetConfig
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.data.lad import read_index
from advinterp.data.sources import open_source
from advinterp.errors import DatasetError
from tests.data.layouts import (
    LAD_ATTRIBUTES,
    LAD_LABELS,
    LAD_PER_CLASS,
    make_lad,
    rewrite_line,
)

ANN = "LAD_annotations"


@pytest.fixture
def lad(tmp_path: Path) -> tuple[Path, dict]:
    return tmp_path, make_lad(tmp_path)


def test_reads_labels_attributes_split_and_paths(lad):
    root, e = lad
    index, paths = read_index(root, 0.34, 0.3, seed=0)
    assert index.class_names == [en for _, en, _ in LAD_LABELS]
    assert index.attribute_names == [n for _, n in LAD_ATTRIBUTES]
    np.testing.assert_array_equal(index.labels, e["labels"])
    np.testing.assert_allclose(index.class_attributes, e["per_class"], atol=1e-6)
    np.testing.assert_array_equal(index.image_attributes, e["image_attrs"])
    assert paths == [root / "LAD_images" / p for p in e["paths"]]
    assert index.sample_ids == e["ids"]
    np.testing.assert_array_equal(index.split == TEST, ~e["train"])
    for c in range(len(LAD_LABELS)):
        s = index.split[index.labels == c]
        assert (s == VAL).sum() == 1 and (s == TRAIN).sum() == 2  # round(0.34 * 3)
    assert index.boxes is None
    index.validate("lad")


def test_annotation_folder_as_root_and_comma_separated_split(lad):
    root, e = lad
    split = root / ANN / "split_supervisedlearning.txt"
    train = [i for i, t in zip(e["ids"], e["train"], strict=True) if t]
    split.write_text("train: " + ", ".join(train) + "\ntest:\n")  # unlisted images are test
    index, paths = read_index(root / ANN, 0.0, 0.3, seed=0)
    assert paths[0] == root / "LAD_images" / e["paths"][0]
    np.testing.assert_array_equal(index.split == TRAIN, e["train"])


def test_per_image_attributes_are_dropped_when_incomplete(lad):
    root, _ = lad
    path = root / ANN / "attributes.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    index, _ = read_index(root, 0.34, 0.3, seed=0)
    assert index.image_attributes is None
    (root / ANN / "attributes.txt").unlink()
    assert read_index(root, 0.34, 0.3, seed=0)[0].image_attributes is None


def test_open_source_end_to_end(lad):
    root, _ = lad
    cfg = DatasetConfig(source="lad", root=root, image_size=8, val_fraction=0.34)
    index, images = open_source(cfg, seed=0)
    assert images.load([0, 14]).shape == (2, 3, 8, 8)
    assert index.num_samples == 3 * LAD_PER_CLASS


@pytest.mark.parametrize(
    "name",
    ["label_list.txt", "attribute_list.txt", "attributes_per_class.txt", "images.txt",
     "split_supervisedlearning.txt"],
)  # fmt: skip
def test_missing_index_file(lad, name):
    root, _ = lad
    (root / ANN / name).unlink()
    with pytest.raises(DatasetError, match=re.escape(name) + ": missing index file"):
        read_index(root, 0.34, 0.3, seed=0)


def test_missing_annotation_folder(tmp_path):
    with pytest.raises(DatasetError, match="LAD_annotations: missing annotation folder"):
        read_index(tmp_path, 0.1, 0.3, seed=0)


@pytest.mark.parametrize(
    ("name", "line", "text", "match"),
    [
        ("label_list.txt", 2, "Label_A_02", r"label_list\.txt:2: expected '<label id>, <name>'"),
        ("label_list.txt", 2, "Label_A_01, cat", r"label_list\.txt:2: label id Label_A_01 repeats line 1"),
        ("attribute_list.txt", 3, "Attr F 001, is red", r"attribute_list\.txt:3: expected"),
        ("attributes_per_class.txt", 2, "Label_A_02, [ 0.1 0.2 0.3 ]", r"attributes_per_class\.txt:2: 3 values, expected 4"),
        ("attributes_per_class.txt", 1, "Label_A_01, [ 0.1 0.2 0.3 ]", r"attributes_per_class\.txt:1: 3 values, expected 4"),
        ("attributes_per_class.txt", 2, "Label_A_02, [ 0.1 0.2 x 0.3 ]", r"attributes_per_class\.txt:2: malformed line"),
        ("attributes_per_class.txt", 2, "Label_A_02, [ 0.1 0.2 nan 0.3 ]", r"attributes_per_class\.txt:2: NaN or infinite"),
        ("attributes_per_class.txt", 3, "Label_F_01, [ 0.1 0.2 2 0.3 ]", r"attributes_per_class\.txt:3: value 2 \(attribute 3\) not in \[0, 1\]"),
        ("attributes_per_class.txt", 2, "Label_X_09, [ 0.1 0.2 0.3 0.3 ]", r"attributes_per_class\.txt:2: label 'Label_X_09' is not listed"),
        ("attributes_per_class.txt", 2, "Label_A_01, [ 0.1 0.2 0.3 0.3 ]", r"attributes_per_class\.txt:2: label Label_A_01 appears more than once"),
        ("attributes_per_class.txt", 3, None, r"attributes_per_class\.txt: label Label_F_01 of label_list\.txt has no attribute row"),
        ("attributes_per_class.txt", 2, "Label_A_02, [ 0.1 0.2 0.3 0.3", r"attributes_per_class\.txt:2: unbalanced"),
        ("images.txt", 4, "Image_4, Label_Z_01, [1, 2, 3, 4], x.jpg", r"images\.txt:4: label 'Label_Z_01' is not listed in label_list\.txt"),
        ("images.txt", 4, "Image_3, Label_A_01, [1, 2, 3, 4], x.jpg", r"images\.txt:4: image id Image_3 repeats line 3"),
        ("images.txt", 4, "Image_4 Label_A_01 x.jpg", r"images\.txt:4: expected '<image id>, <label>, <box>, <path>'"),
        ("split_supervisedlearning.txt", 1, "Image_1", r"split_supervisedlearning\.txt:1: expected a 'train:' line"),
        ("split_supervisedlearning.txt", 2, "Image_99", r"split_supervisedlearning\.txt:2: image id 'Image_99' is not listed in images\.txt"),
        ("split_supervisedlearning.txt", 2, "Image_4", r"split_supervisedlearning\.txt:\d+: image Image_4 is in both the train and the test list"),
        ("attributes.txt", 2, "Label_A_01, animals/Label_A_01/000002.jpg, [ 0 1 2 0 ]", r"attributes\.txt:2: per-image attribute values must be 0 or 1"),
        ("attributes.txt", 2, "Label_A_02, animals/Label_A_01/000002.jpg, [ 0 1 1 0 ]", r"attributes\.txt:2: animals/Label_A_01/000002\.jpg has label Label_A_02 here"),
        ("attributes.txt", 2, "Label_A_01, animals/Label_A_01/000002.jpg, [ 0 1 1 ]", r"attributes\.txt:2: 3 values, expected 4"),
    ],
)  # fmt: skip
def test_malformed_index_file(lad, name, line, text, match):
    root, _ = lad
    rewrite_line(root / ANN / name, line, text)
    with pytest.raises(DatasetError, match=match):
        read_index(root, 0.34, 0.3, seed=0)


def test_empty_train_split_is_an_error(lad):
    root, e = lad
    (root / ANN / "split_supervisedlearning.txt").write_text(
        "train:\ntest:\n" + "\n".join(e["ids"])
    )
    cfg = DatasetConfig(source="lad", root=root, image_size=8)
    with pytest.raises(DatasetError, match="the train split is empty"):
        open_source(cfg, seed=0)


def test_missing_image_file_is_named(lad):
    root, e = lad
    (root / "LAD_images" / e["paths"][7]).unlink()
    cfg = DatasetConfig(source="lad", root=root, image_size=8)
    with pytest.raises(DatasetError, match=r"000008\.jpg: image file not found"):
        open_source(cfg, seed=0)
