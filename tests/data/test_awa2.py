"""Animals_with_Attributes2 reader on a tiny directory in the real layout, valid and broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from advinterp.config.dataset import DatasetConfig
from advinterp.data.awa2 import read_index
from advinterp.data.dataset import TEST, VAL
from advinterp.data.sources import open_source
from advinterp.errors import DatasetError
from tests.data.layouts import (
    AWA_CLASSES,
    AWA_PER_CLASS,
    AWA_PREDICATES,
    make_awa2,
    rewrite_line,
)


@pytest.fixture
def awa(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "Animals_with_Attributes2"
    return root, make_awa2(root)


def test_reads_classes_predicates_matrix_and_images(awa):
    root, e = awa
    index, paths = read_index(root, 0.2, 0.3, seed=0)
    assert index.class_names == AWA_CLASSES and index.attribute_names == AWA_PREDICATES
    expect = np.where(e["strengths"] < 0, 0.0, e["strengths"] / 100)
    np.testing.assert_allclose(index.class_attributes, expect, atol=1e-6)
    assert index.class_attributes[1, 2] == 0.0  # -1 marks a missing value
    assert index.image_attributes is None and index.boxes is None
    np.testing.assert_array_equal(index.labels, np.repeat(np.arange(3), AWA_PER_CLASS))
    assert paths[0] == root / "JPEGImages" / "antelope" / "antelope_10001.jpg"
    for c, name in enumerate(AWA_CLASSES):
        mine = [p for p, lab in zip(paths, index.labels, strict=True) if lab == c]
        assert all(p.parent.name == name for p in mine)
        assert mine == sorted(mine)
    assert index.sample_ids[0] == "antelope/antelope_10001.jpg"
    index.validate("awa2")


def test_split_is_stratified_and_seeded(awa):
    root, _ = awa
    index, _ = read_index(root, 0.2, 0.3, seed=0)
    for c in range(3):
        s = index.split[index.labels == c]
        assert (s == TEST).sum() == round(0.3 * AWA_PER_CLASS)
        assert (s == VAL).sum() == round(0.2 * AWA_PER_CLASS)
    again, _ = read_index(root, 0.2, 0.3, seed=0)
    np.testing.assert_array_equal(index.split, again.split)


def test_parent_directory_works_as_root(awa):
    root, _ = awa
    index, _ = read_index(root.parent, 0.2, 0.3, seed=0)
    assert index.num_samples == 3 * AWA_PER_CLASS


def test_open_source_loads_pixels(awa):
    root, _ = awa
    cfg = DatasetConfig(source="awa2", root=root, image_size=8, val_fraction=0.2)
    index, images = open_source(cfg, seed=0)
    x = images.load(range(index.num_samples))
    assert x.shape == (18, 3, 8, 8) and x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize(
    ("rel", "match"),
    [
        ("classes.txt", r"classes\.txt: missing index file"),
        ("predicates.txt", r"predicates\.txt: missing index file"),
        ("predicate-matrix-continuous.txt", r"predicate-matrix-continuous\.txt: missing"),
    ],
)
def test_missing_index_file(awa, rel, match):
    root, _ = awa
    (root / rel).unlink()
    with pytest.raises(DatasetError, match=match):
        read_index(root, 0.2, 0.3, seed=0)


@pytest.mark.parametrize(
    ("rel", "line", "text", "match"),
    [
        ("classes.txt", 2, "grizzly+bear", r"classes\.txt:2: expected '<id> <name>'"),
        ("classes.txt", 3, "3\tantelope", r"classes\.txt:3: class name 'antelope' repeats line 1"),
        ("predicates.txt", 5, None, r"predicate-matrix-continuous\.txt: predicate matrix is 3 x 5, expected 3 x 4"),
        ("predicate-matrix-continuous.txt", 3, None, r"predicate-matrix-continuous\.txt: predicate matrix is 2 x 5, expected 3 x 5"),
        ("predicate-matrix-continuous.txt", 2, "1 2 3 4", r"predicate-matrix-continuous\.txt:2: malformed line"),
        ("predicate-matrix-continuous.txt", 2, "1 2 3 4 x", r"predicate-matrix-continuous\.txt:2: malformed line"),
        ("predicate-matrix-continuous.txt", 2, "1 2 NaN 4 5", r"predicate-matrix-continuous\.txt:2: NaN or infinite"),
        ("predicate-matrix-continuous.txt", 3, "1 2 120 4 5", r"predicate-matrix-continuous\.txt:3: value 120 in column 3 is neither"),
        ("predicate-matrix-continuous.txt", 3, "1 2 -3 4 5", r"predicate-matrix-continuous\.txt:3: value -3 in column 3"),
    ],
)  # fmt: skip
def test_malformed_index_file(awa, rel, line, text, match):
    root, _ = awa
    rewrite_line(root / rel, line, text)
    with pytest.raises(DatasetError, match=match):
        read_index(root, 0.2, 0.3, seed=0)


def test_missing_or_empty_class_folder(awa):
    root, _ = awa
    folder = root / "JPEGImages" / "killer+whale"
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"killer\+whale: no images"):
        read_index(root, 0.2, 0.3, seed=0)
    folder.rmdir()
    with pytest.raises(DatasetError, match=r"killer\+whale: missing image folder"):
        read_index(root, 0.2, 0.3, seed=0)
    shutil.rmtree(root / "JPEGImages")
    with pytest.raises(DatasetError, match=r"JPEGImages: missing image directory"):
        read_index(root, 0.2, 0.3, seed=0)


def test_extra_folders_are_ignored(awa):
    root, _ = awa
    (root / "JPEGImages" / "zebra").mkdir()
    index, _ = read_index(root, 0.2, 0.3, seed=0)
    assert index.num_samples == 3 * AWA_PER_CLASS


def test_truncated_image_fails_when_loaded(awa):
    root, _ = awa
    victim = root / "JPEGImages" / "antelope" / "antelope_10001.jpg"
    victim.write_bytes(victim.read_bytes()[:40])
    cfg = DatasetConfig(source="awa2", root=root, image_size=8, val_fraction=0.2)
    _, images = open_source(cfg, seed=0)
    with pytest.raises(DatasetError, match=r"antelope_10001\.jpg: not a readable image"):
        images.load([0])
