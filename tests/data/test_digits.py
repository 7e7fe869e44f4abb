"""The embedded digits: determinism, shapes and ranges, balance, and that glyphs differ by class."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.config.dataset import DatasetConfig, DigitsConfig
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.data.digits import NUM_CLASSES, font_dir, generate
from advinterp.data.sources import open_source
from advinterp.errors import DatasetError

SIZE = 28


def _cfg(**kw) -> DigitsConfig:
    return DigitsConfig(**{"images_per_class": 6, **kw})


def test_same_seed_same_images_different_seed_different():
    a, b, c = (generate(_cfg(), SIZE, seed=s) for s in (3, 3, 4))
    rows = [0, 7, 23, 59]
    np.testing.assert_array_equal(a.load(rows), b.load(rows))
    np.testing.assert_array_equal(a.index.split, b.index.split)
    # another seed: other pixels for every image, and another split
    xa, xc = a.load(rows), c.load(rows)
    assert all(not np.array_equal(xa[k], xc[k]) for k in range(len(rows)))
    assert not np.array_equal(a.index.split, c.index.split)
    np.testing.assert_array_equal(a.index.labels, c.index.labels)


def test_an_image_does_not_depend_on_the_batch():
    ds = generate(_cfg(), SIZE, seed=0)
    np.testing.assert_array_equal(ds.load([5])[0], ds.load([2, 5, 9])[1])


def test_shapes_range_labels_and_index():
    ds = generate(_cfg(), SIZE, seed=0)
    x = ds.load(range(ds.index.num_samples))
    assert x.shape == (60, 1, SIZE, SIZE) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # white strokes on a dark background, like MNIST: the border is dark, ink is bright
    border = np.concatenate([x[:, 0, :2].ravel(), x[:, 0, -2:].ravel()])
    assert border.mean() < 0.1 and x.max() > 0.9
    ink = (x > 0.5).mean(axis=(1, 2, 3))
    assert ink.min() > 0.03 and ink.max() < 0.5  # every image holds a glyph, none is a blob
    idx = ds.index
    assert idx.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(idx.labels, np.repeat(np.arange(10), 6))
    assert idx.attribute_names == [] and idx.class_attributes.shape == (10, 0)
    assert idx.boxes is None and idx.image_attributes is None
    idx.validate("test")


def test_classes_and_splits_are_balanced():
    ds = generate(_cfg(images_per_class=20), SIZE, seed=1, val_fraction=0.1, test_fraction=0.3)
    idx = ds.index
    for code, per_class in ((TRAIN, 12), (VAL, 2), (TEST, 6)):
        counts = np.bincount(idx.labels[idx.split == code], minlength=NUM_CLASSES)
        np.testing.assert_array_equal(counts, per_class)


def test_glyph_classes_are_distinguishable_by_nearest_mean():
    """A nearest-class-mean classifier on raw pixels beats chance (0.1) by far: the
    pixels carry the digit (0.43 here; the distortions keep it well under MNIST's ~0.8,
    the profile's CNN reaches 0.98). Were labels and glyphs decoupled, it would sit near 0.1."""
    ds = generate(_cfg(images_per_class=40), SIZE, seed=2)
    x = ds.load(range(ds.index.num_samples)).reshape(-1, SIZE * SIZE).astype(np.float64)
    y = ds.index.labels
    train = np.arange(len(y)) % 4 != 0
    means = np.stack([x[train & (y == c)].mean(0) for c in range(NUM_CLASSES)])
    pred = ((x[~train, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == y[~train]).mean() > 0.3


def test_distortions_are_parameters():
    plain = _cfg(
        fonts=("DejaVuSans",),
        height=(0.7, 0.7),
        stroke=(0, 0),
        rotation=0.0,
        shear=0.0,
        scale=(1.0, 1.0),
        translate=0.0,
        elastic_alpha=0.0,
        intensity=(1.0, 1.0),
        noise=0.0,
    )
    ds = generate(plain, SIZE, seed=0)
    x = ds.load(range(ds.index.num_samples))
    # no randomness left: every image of a class is the same glyph
    for c in range(NUM_CLASSES):
        same = x[ds.index.labels == c]
        np.testing.assert_array_equal(same, np.broadcast_to(same[:1], same.shape))
    # and classes differ
    assert not np.array_equal(x[0], x[6])


def test_unknown_font_is_named():
    with pytest.raises(DatasetError, match="dataset.digits.fonts: no font 'NoSuchFont'"):
        generate(_cfg(fonts=("NoSuchFont",)), SIZE, seed=0)
    assert (font_dir() / "DejaVuSans.ttf").is_file()


def test_open_source_digits_and_max_images():
    digits = _cfg(images_per_class=20)
    cfg = DatasetConfig(source="digits", image_size=SIZE, max_images=100, digits=digits)
    index, images = open_source(cfg, seed=0)
    assert index.num_samples == 100 and np.bincount(index.labels).tolist() == [10] * 10
    # the subset's rows are the full dataset's images
    full = generate(digits, SIZE, seed=0)
    row = int(index.sample_ids[99])
    np.testing.assert_array_equal(images.load([99]), full.load([row]))


def test_digits_source_needs_its_section():
    with pytest.raises(ValueError, match="dataset.digits"):
        DatasetConfig(source="digits", image_size=SIZE)
