"""The embedded synthetic attribute dataset: determinism, fine vs coarse classes, boxes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.synthetic import (
    GROUP_VALUES,
    GROUPS,
    PARTS,
    _group_offsets,
    _render,
    attribute_names,
    generate,
)

SIZE = 32


def _cfg(**kw) -> SyntheticConfig:
    base = {"num_classes": 6, "images_per_class": 4, "families": 2, "clutter": 2}
    return SyntheticConfig(**{**base, **kw})


def _mains(class_attributes: np.ndarray) -> np.ndarray:
    """Main value of every (class, group): the argmax of the group's probabilities."""
    off = _group_offsets()
    return np.stack(
        [class_attributes[:, off[g] : off[g + 1]].argmax(axis=1) for g in range(len(GROUPS))],
        axis=1,
    )


def test_same_seed_same_dataset_different_seed_different():
    a, b = generate(_cfg(), SIZE, seed=3), generate(_cfg(), SIZE, seed=3)
    c = generate(_cfg(), SIZE, seed=4)
    for name in ("labels", "split", "class_attributes", "image_attributes"):
        np.testing.assert_array_equal(getattr(a.index, name), getattr(b.index, name))
    np.testing.assert_array_equal(a.index.boxes.xyxy, b.index.boxes.xyxy)
    np.testing.assert_array_equal(a.index.boxes.attributes, b.index.boxes.attributes)
    np.testing.assert_array_equal(a.load([0, 7, 23]), b.load([0, 7, 23]))
    assert not np.array_equal(a.index.class_attributes, c.index.class_attributes)
    assert not np.array_equal(a.load([0]), c.load([0]))


def test_rendering_an_image_does_not_depend_on_the_batch():
    ds = generate(_cfg(), SIZE, seed=0)
    np.testing.assert_array_equal(ds.load([5])[0], ds.load([2, 5, 9])[1])


def test_images_shape_and_range():
    ds = generate(_cfg(), SIZE, seed=0)
    x = ds.load(range(ds.index.num_samples))
    assert x.shape == (24, 3, SIZE, SIZE) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.05


@pytest.mark.parametrize("fd", [1, 3])
def test_fine_classes_depart_from_their_family_prototype_in_exactly_fine_differences_groups(fd):
    cfg = _cfg(mode="fine", num_classes=8, families=2, fine_differences=fd)
    seed = 11
    ds = generate(cfg, SIZE, seed=seed)
    mains = _mains(ds.index.class_attributes)
    # The prototypes are the first draws of the class RNG (see synthetic._class_distributions).
    rng = np.random.default_rng([seed, 0])
    n_values = np.array([len(GROUP_VALUES[kind]) for _, kind in GROUPS])
    prototypes = np.stack([rng.integers(0, n_values) for _ in range(cfg.families)])
    for c in range(cfg.num_classes):
        assert (mains[c] != prototypes[c % cfg.families]).sum() == fd
    assert len({tuple(m) for m in mains}) == cfg.num_classes  # classes are distinct


def test_coarse_classes_differ_in_more_groups_than_fine_ones():
    def within_family(mode: str) -> np.ndarray:
        cfg = _cfg(mode=mode, num_classes=10, families=2, fine_differences=1)
        mains = _mains(generate(cfg, SIZE, 5).index.class_attributes)
        pairs = [(i, j) for i, j in itertools.combinations(range(10), 2) if i % 2 == j % 2]
        return np.array([(mains[i] != mains[j]).sum() for i, j in pairs])

    fine, coarse = within_family("fine"), within_family("coarse")
    assert fine.min() >= 1 and fine.max() <= 2  # each departs from the prototype in 1 group
    assert coarse.mean() > 6  # independent groups: about 10 of 15 differ on average


def test_class_attributes_are_a_distribution_per_group():
    ds = generate(_cfg(), SIZE, seed=2)
    cam = ds.index.class_attributes
    off = _group_offsets()
    assert cam.shape == (6, len(attribute_names())) and cam.min() >= 0 and cam.max() <= 1
    for g in range(len(GROUPS)):
        np.testing.assert_allclose(cam[:, off[g] : off[g + 1]].sum(axis=1), 1.0, atol=1e-5)
        assert np.all(cam[:, off[g] : off[g + 1]].max(axis=1) >= 0.75)  # dominance low end


def test_image_attributes_have_one_value_per_group_of_each_drawn_part():
    ds = generate(_cfg(dropout=0.3), SIZE, seed=1)
    ia = ds.index.image_attributes
    off = _group_offsets()
    for g, (part, _) in enumerate(GROUPS):
        per_group = ia[:, off[g] : off[g + 1]].sum(axis=1)
        np.testing.assert_array_equal(per_group, ds.present[:, PARTS.index(part)].astype(int))
    assert (~ds.present).any()  # dropout happened


def test_boxes_lie_in_the_image_and_match_the_visible_parts():
    ds = generate(_cfg(dropout=0.2), SIZE, seed=4)
    b = ds.index.boxes
    off = _group_offsets()
    assert b.xyxy.min() >= 0 and b.xyxy.max() <= 1
    assert np.all(b.xyxy[:, 2] > b.xyxy[:, 0]) and np.all(b.xyxy[:, 3] > b.xyxy[:, 1])
    for i in range(ds.index.num_samples):
        _, label_map = _render(ds, i)
        rows = b.of(i)
        visible = [p for p in range(len(PARTS)) if (label_map == p + 1).sum() >= 3]
        assert list(b.part[rows]) == visible
        assert all(ds.present[i, p] for p in visible)
        for k, p in zip(range(rows.start, rows.stop), b.part[rows], strict=True):
            ys, xs = np.nonzero(label_map == p + 1)
            expect = [
                xs.min() / SIZE,
                ys.min() / SIZE,
                (xs.max() + 1) / SIZE,
                (ys.max() + 1) / SIZE,
            ]
            np.testing.assert_allclose(b.xyxy[k], expect, atol=1e-6)
            cols = np.concatenate(
                [
                    np.arange(off[g], off[g + 1])
                    for g, (part, _) in enumerate(GROUPS)
                    if part == PARTS[p]
                ]
            )
            assert b.attributes[k].sum() == 3  # colour, pattern, size of that part
            np.testing.assert_array_equal(b.attributes[k, cols], ds.index.image_attributes[i, cols])


def test_generated_index_validates_and_split_is_stratified():
    ds = generate(_cfg(images_per_class=10), SIZE, seed=0, val_fraction=0.2, test_fraction=0.3)
    ds.index.validate("synthetic")
    for c in range(6):
        s = ds.index.split[ds.index.labels == c]
        assert np.bincount(s, minlength=3).tolist() == [5, 2, 3]
