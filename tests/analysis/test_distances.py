"""Eqs. 8-15 against hand computations, and the Figure 5 plot."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from advinterp.analysis.distance_plots import figure5
from advinterp.analysis.distances import (
    DistancePair,
    clean_vs_adversarial,
    histograms,
    l2_rows,
    masked_distance,
    robust_vs_standard,
    wrong_vs_correct,
)

PHI = np.array([[1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0]])  # class 0 = y_n, class 1 = y
TRUE, WRONG = np.array([0]), np.array([1])
Z = np.array([[1.0, 0, 0, 0, 0]])
ZHAT = np.array([[0.0, 0, 3.0, 0, 0.5]])  # |change| = [1, 0, 3, 0, .5]: top 40% = {2, 0}


def test_eq8_9_clean_vs_adversarial_by_hand():
    p = clean_vs_adversarial(Z, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
    assert p.d1[0] == pytest.approx(math.sqrt(1 + 9))  # ||Z - Ẑ|| over {0, 2}
    assert p.d2[0] == pytest.approx(math.sqrt(2))  # ||φ(y_n) - φ(y)|| over {0, 2}


def test_eq10_11_wrong_vs_correct_by_hand():
    p = wrong_vs_correct(Z, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
    assert p.d1[0] == pytest.approx(2.0)  # Ẑ=[0, 3] vs φ(y)=[0, 1]
    assert p.d2[0] == pytest.approx(math.sqrt(10))  # vs φ(y_n)=[1, 0]
    assert p.summary()["fraction_d1_lt_d2"] == 1.0
    # with all attributes the 0.5 on attribute 4 adds to both
    full = wrong_vs_correct(Z, ZHAT, PHI, TRUE, WRONG, fraction=1.0)
    assert full.d1[0] == pytest.approx(math.sqrt(4 + 0.25))


def test_eq12_13_robust_vs_standard_uses_the_at_attributes():
    zat = np.array([[0.5, 0, 0, 2.0, 0]])  # |change vs Ẑ| = [.5, 0, 3, 2, .5] -> {2, 3}
    p = robust_vs_standard(zat, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
    assert p.d1[0] == pytest.approx(math.sqrt(9 + 4))
    assert p.d2[0] == pytest.approx(1.0)  # φ differs only on attribute 2 within {2, 3}


def test_masked_distance_and_l2_rows():
    u = np.array([[3.0, 4.0, 10.0], [0.0, 0.0, 0.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    np.testing.assert_allclose(masked_distance(u, np.zeros_like(u), mask), [5.0, 0.0])
    n = l2_rows(u)
    assert np.linalg.norm(n[0]) == pytest.approx(1.0) and not n[1].any()


def test_summary_and_histograms():
    p = DistancePair(np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 4.0]))
    s = p.summary()
    assert s["n"] == 3 and s["fraction_d1_lt_d2"] == pytest.approx(2 / 3)
    assert s["median_d1"] == 2.0 and s["mean_d2"] == pytest.approx(7 / 3)
    assert DistancePair(np.zeros(0), np.zeros(0)).summary() == {"n": 0, "fraction_d1_lt_d2": None}
    edges, counts = histograms({"c": p}, bins=4)
    assert len(edges) == 5 and edges[0] == 0.0 and edges[-1] >= 4.0
    assert counts["c"][0].sum() == 3 and counts["c"][1].sum() == 3


def test_figure5_renders_a_png():
    rng = np.random.default_rng(0)
    pairs = {k: DistancePair(rng.random(30), rng.random(30) + 0.3) for k in "abcd"}
    pairs["b"] = DistancePair(np.zeros(0), np.zeros(0))  # no eligible image: still a panel
    fig = figure5(pairs, "untargeted, eps 0.06")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n" and len(buf.getvalue()) > 5000
    assert len(fig.axes) == 4
