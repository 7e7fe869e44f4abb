"""Eqs. 2-3, the n-superpixel / equal-pixel-count construction, ranks, random baseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from advinterp.analysis.localization import (
    example_curves,
    hamming_likeness,
    jaccard,
    lime_maps,
    mean_rank_table,
    nanmean0,
    pixel_maps,
    positive_l1,
    rank_explainers,
    superpixel_unions,
    top_pixel_masks,
)
from advinterp.explainers.random_baseline import (
    expected_hamming,
    expected_jaccard,
    expected_random_curves,
    random_scores,
)


def _mask(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in r] for r in rows])


P = _mask(["##..", "##..", "....", "...."])  # 4 px
C = _mask([".##.", ".##.", ".##.", "...."])  # 6 px; overlap 2, union 8, xor 6


def test_jaccard_and_hamming_by_hand():
    assert jaccard(P, C) == pytest.approx(2 / 8)
    assert hamming_likeness(P, C) == pytest.approx(1 - 6 / 16)
    assert jaccard(C, C) == 1.0 and hamming_likeness(C, C) == 1.0
    assert jaccard(P, ~P) == 0.0 and hamming_likeness(P, ~P) == 0.0
    stacked = jaccard(np.stack([P, C]), C)  # broadcasting over a leading axis
    np.testing.assert_allclose(stacked, [0.25, 1.0])


def test_positive_l1_discards_negative_gradients():
    attr = np.zeros((3, 2, 2))
    attr[:, 0, 0] = [1.0, -2.0, 0.5]
    attr[:, 1, 1] = [-1.0, -1.0, -1.0]
    np.testing.assert_allclose(positive_l1(attr), [[1.5, 0.0], [0.0, 0.0]])


def test_superpixel_unions_grow_and_hold_after_the_last_id():
    seg = np.array([[0, 0, 1], [2, 2, 1], [3, 3, 3]])
    unions = superpixel_unions(seg, [2, 1], n_max=3)
    assert unions.sum(axis=(1, 2)).tolist() == [2, 4, 4]
    np.testing.assert_array_equal(unions[1], np.isin(seg, [1, 2]))


def test_top_pixel_masks_take_exactly_k_highest_and_break_ties_by_key():
    scores = np.array([[5.0, 0.0], [3.0, 0.0]])
    tie = np.array([[0.0, 0.1], [0.0, 0.9]])
    masks = top_pixel_masks(scores, [1, 2, 3, 4], tie)
    assert masks.sum(axis=(1, 2)).tolist() == [1, 2, 3, 4]
    np.testing.assert_array_equal(masks[0], [[True, False], [False, False]])
    np.testing.assert_array_equal(masks[2], [[True, False], [True, True]])  # tie -> key 0.9


def test_example_curves_equal_pixel_count_and_nan_beyond_lime():
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True
    seg = np.repeat(np.arange(4), 4).reshape(4, 4)  # four rows of 4 px
    grad_scores = np.zeros((4, 4))
    grad_scores[:2, :2] = 1.0  # a perfect gradient explainer
    tie = np.random.default_rng(0).random((4, 4))
    curves = example_curves(region, seg, [0, 1], {"saliency": grad_scores}, n_max=3, tie_break=tie)
    assert curves.n_valid == 2
    assert curves.sizes.tolist() == [4, 8, 8]
    # LIME: row 0 (4 px, 2 in C) then rows 0-1 (8 px, all 4 of C).
    np.testing.assert_allclose(curves.jaccard["lime"][:2], [2 / 6, 4 / 8])
    np.testing.assert_allclose(curves.hamming["lime"][:2], [1 - 4 / 16, 1 - 4 / 16])
    # Saliency gets the same pixel counts: its 4 best pixels are C itself.
    np.testing.assert_allclose(curves.jaccard["saliency"][:2], [1.0, 4 / 8])
    assert np.isnan(curves.jaccard["lime"][2]) and np.isnan(curves.hamming["saliency"][2])


def test_ranks_and_mean_rank_table():
    vals = np.array([[[0.9, 0.5, 0.1], [0.2, 0.2, 0.7], [np.nan, 0.3, 0.4]]])
    ranks = rank_explainers(vals)
    np.testing.assert_allclose(ranks[0, :2], [[1, 2, 3], [2.5, 2.5, 1]])
    assert np.isnan(ranks[0, 2]).all()
    table = mean_rank_table(vals, vals, ["a", "b", "c"])
    assert table["a"]["jaccard"] == pytest.approx((1 + 2.5) / 2)
    assert table["c"]["hamming"] == pytest.approx((3 + 1) / 2)
    # Mean ranks of X explainers always average (X + 1) / 2.
    assert sum(v["jaccard"] for v in table.values()) / 3 == pytest.approx(2.0)


def test_expected_random_scores_by_hand():
    # N=4, |C|=1, k=1: X ~ Bernoulli(1/4); J = X / (2 - X) -> E = 1/4.
    assert expected_jaccard(1, 1, 4) == pytest.approx(0.25)
    assert expected_hamming(1, 1, 4) == pytest.approx(1 - (2 - 2 * 0.25) / 4)
    assert expected_jaccard(4, 4, 4) == pytest.approx(1.0)


def test_random_baseline_scores_near_its_expected_value():
    rng = np.random.default_rng(0)
    h = w = 32
    region = np.zeros((h, w), bool)
    region[4:14, 10:30] = True  # 200 px
    counts = [50, 200, 600]
    scores = random_scores(400, h, w, rng)
    tie = rng.random((h, w))
    jac = np.array([jaccard(top_pixel_masks(s, counts, tie), region) for s in scores])
    ham = np.array([hamming_likeness(top_pixel_masks(s, counts, tie), region) for s in scores])
    for i, k in enumerate(counts):
        want_j = expected_jaccard(k, 200, h * w)
        se = jac[:, i].std() / np.sqrt(len(jac))
        assert abs(jac[:, i].mean() - want_j) < 4 * se + 1e-3
        assert abs(ham[:, i].mean() - expected_hamming(k, 200, h * w)) < 0.005
    # And far below a real localisation: J(C, C) = 1.
    assert jac.mean() < 0.25


@pytest.mark.parametrize(("k", "region", "total"), [(5, 7, 30), (300, 200, 4096), (0, 3, 10)])
def test_expected_jaccard_matches_scipy_hypergeom(k, region, total):
    from scipy.stats import hypergeom

    x = np.arange(max(0, k + region - total), min(k, region) + 1)
    want = float(np.sum(hypergeom(total, region, k).pmf(x) * x / (k + region - x)))
    assert expected_jaccard(k, region, total) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_nanmean0_ignores_nan_and_keeps_all_nan_columns_nan():
    a = np.array([[1.0, np.nan, np.nan], [3.0, 4.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice"
        got = nanmean0(a)
    np.testing.assert_array_equal(got[:2], [2.0, 4.0])
    assert np.isnan(got[2])
    np.testing.assert_array_equal(nanmean0(np.ones((2, 2, 3))), np.ones((2, 3)))


def test_pixel_maps_positive_l1_for_gradients_random_as_is():
    sal = np.zeros((1, 3, 2, 2))
    sal[0, :, 0, 1] = [2.0, -1.0, 0.5]
    gbp = -np.ones((1, 3, 2, 2))
    rnd = np.arange(4.0).reshape(1, 2, 2)
    maps = pixel_maps({"saliency": sal, "guided_backprop": gbp, "random": rnd, "rows": [0]})
    assert list(maps) == ["saliency", "guided_backprop", "random"]
    np.testing.assert_allclose(maps["saliency"][0], [[0.0, 2.5], [0.0, 0.0]])
    np.testing.assert_array_equal(maps["guided_backprop"], np.zeros((1, 2, 2)))
    assert maps["random"] is rnd


def test_lime_maps_weight_of_each_kept_positive_superpixel():
    seg = np.array([[[0, 1], [2, 2]], [[0, 0], [1, 1]]])
    top = np.array([[2, 0, -1], [1, -1, -1]])
    weights = np.array([[0.5, 0.25, 9.0], [0.125, 0.0, 0.0]])
    maps = lime_maps({"lime_segments": seg, "lime_top": top, "lime_weights": weights})
    np.testing.assert_allclose(maps, [[[0.25, 0.0], [0.5, 0.5]], [[0.0, 0.0], [0.125, 0.125]]])
    empty = lime_maps(
        {
            "lime_segments": np.zeros((0, 2, 2), int),
            "lime_top": np.zeros((0, 3), int),
            "lime_weights": np.zeros((0, 3)),
        }
    )
    assert empty.shape == (0, 2, 2)


def test_expected_random_curves_per_example_and_nan_beyond_n_valid():
    regions = np.zeros((2, 2, 2), bool)
    regions[0, 0, 0] = True  # |C| = 1 of N = 4
    regions[1] = True  # |C| = 4
    sizes = np.array([[1, 2], [4, 4]])
    exp_j, exp_h = expected_random_curves(regions, sizes, np.array([2, 1]))
    assert exp_j[0, 0] == pytest.approx(0.25)  # by hand, as above
    assert exp_j[0, 1] == pytest.approx(expected_jaccard(2, 1, 4))
    assert exp_h[0, 1] == pytest.approx(expected_hamming(2, 1, 4))
    assert exp_j[1, 0] == pytest.approx(1.0) and exp_h[1, 0] == pytest.approx(1.0)
    assert np.isnan(exp_j[1, 1]) and np.isnan(exp_h[1, 1])
