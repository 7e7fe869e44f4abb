"""Scores of maps against references and each other, on hand-made maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from advinterp.comparison.scores import (
    box_mask,
    box_weights,
    expected_overlap,
    overlap,
    spearman,
    tie_keys,
    top_count,
    top_jaccard,
    top_share,
)
from advinterp.explainers.random_baseline import expected_jaccard


def ifgsm_like_delta(rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """|δ| summed over 3 channels of an L-inf attack: most pixels at the budget, many ties."""
    per_channel = rng.choice([0.0, 0.01, 0.02], size=(3, size, size), p=[0.1, 0.2, 0.7])
    return per_channel.sum(0)


def test_a_map_equal_to_the_perturbation_scores_one() -> None:
    rng = np.random.default_rng(0)
    delta = ifgsm_like_delta(rng)
    region = top_share(delta, 0.1)
    assert overlap(delta, region, tie_keys(delta.shape, 1)) == 1.0


def test_top_share_keeps_ties_and_never_zeros() -> None:
    values = np.zeros((4, 4))
    values[0, :3] = 0.06  # three tied maxima
    values[1, 0] = 0.02
    # k = ceil(0.1 * 16) = 2, and the 2nd largest value is tied with a 3rd: all three kept
    assert top_share(values, 0.1).sum() == 3
    # k = 8 reaches the zeros: only the 4 non-zero pixels are the perturbation
    assert top_share(values, 0.5).sum() == 4


def test_overlap_is_one_for_the_region_first_and_zero_for_it_last() -> None:
    region = np.zeros((8, 8), bool)
    region[2:4, 2:6] = True
    keys = tie_keys(region.shape, 0)
    assert overlap(region.astype(float), region, keys) == 1.0
    assert overlap(-region.astype(float), region, keys) == 0.0
    # a map with half of the region in its top |R| pixels
    half = np.zeros((8, 8))
    half[2, 2:6] = 1.0
    half[7, 0:4] = 1.0
    assert overlap(half, region, keys) == 0.5


def test_overlap_of_an_empty_region_is_nan() -> None:
    empty = np.zeros((4, 4), bool)
    assert np.isnan(overlap(np.ones((4, 4)), empty, tie_keys((4, 4), 0)))
    assert np.isnan(expected_overlap(empty))


def test_a_random_map_matches_the_exact_expected_overlap() -> None:
    rng = np.random.default_rng(1)
    region = np.zeros((12, 12), bool)
    region[3:7, 1:10] = True  # 36 of 144 pixels
    assert expected_overlap(region) == 36 / 144
    draws = np.array(
        [overlap(rng.random((12, 12)), region, tie_keys((12, 12), i)) for i in range(3000)]
    )
    se = draws.std(ddof=1) / np.sqrt(len(draws))
    assert abs(draws.mean() - 36 / 144) < 3 * se


def test_ties_are_broken_by_the_keys_not_by_position() -> None:
    # a constant map: the top set is whatever the keys say, so it scores like random
    region = np.zeros((10, 10), bool)
    region[:5] = True  # the first half in raster order: position order would score 1
    scores = [overlap(np.zeros((10, 10)), region, tie_keys((10, 10), s)) for s in range(400)]
    assert abs(np.mean(scores) - 0.5) < 0.05


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, (9, 9)).astype(float)
    b = a + rng.normal(0, 2, (9, 9))
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.ones_like(a)))


def test_two_identical_maps_agree_perfectly_and_random_pairs_as_expected() -> None:
    rng = np.random.default_rng(3)
    m = rng.random((10, 10))
    k = top_count(0.1, 100)
    assert k == 10
    assert top_jaccard(m, m.copy(), k, tie_keys((10, 10), 0)) == 1.0
    draws = np.array(
        [top_jaccard(rng.random((10, 10)), rng.random((10, 10)), k, m) for _ in range(3000)]
    )
    se = draws.std(ddof=1) / np.sqrt(len(draws))
    assert abs(draws.mean() - expected_jaccard(k, k, 100)) < 3 * se


def test_boxes_cover_the_pixels_whose_centres_they_contain() -> None:
    # x from 0.25 to 0.75 of 8 px: centres 2.5..5.5 -> columns 2-5; y 0 to 0.5: rows 0-3
    mask = box_mask(np.array([[0.25, 0.0, 0.75, 0.5]]), (8, 8))
    expected = np.zeros((8, 8), bool)
    expected[0:4, 2:6] = True
    np.testing.assert_array_equal(mask, expected)
    assert not box_mask(np.zeros((0, 4)), (8, 8)).any()


def test_box_weights_add_up_where_boxes_overlap() -> None:
    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]])
    w = box_weights(boxes, np.array([3.0, 1.0]), (4, 4))
    assert w[0, 0] == 3.0 and w[1, 1] == 4.0 and w[3, 3] == 1.0 and w[0, 3] == 0.0
