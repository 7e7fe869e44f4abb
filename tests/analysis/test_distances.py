"""Eqs. 8-15 against hand computations, and the Figure 5 plot."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from advinterp.analysis.distance_plots import figure5
from advinterp.analysis.distances import (
    DistancePair,
    ModelAttributes,
    figure5_panels,
    histogram_table,
    histograms,
    l2_rows,
    masked_distance,
    panel_distances,
)

PHI = np.array([[1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0]])  # class 0 = y_n, class 1 = y
TRUE, WRONG = np.array([0]), np.array([1])
Z = np.array([[1.0, 0, 0, 0, 0]])
ZHAT = np.array([[0.0, 0, 3.0, 0, 0.5]])  # |change| = [1, 0, 3, 0, .5]: top 40% = {2, 0}


def test_eq8_9_clean_vs_adversarial_by_hand():
    p = panel_distances("a", Z, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
    assert p.d1[0] == pytest.approx(math.sqrt(1 + 9))  # ||Z - Ẑ|| over {0, 2}
    assert p.d2[0] == pytest.approx(math.sqrt(2))  # ||φ(y_n) - φ(y)|| over {0, 2}


def test_eq10_11_wrong_vs_correct_by_hand():
    p = panel_distances("c", Z, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
    assert p.d1[0] == pytest.approx(2.0)  # Ẑ=[0, 3] vs φ(y)=[0, 1]
    assert p.d2[0] == pytest.approx(math.sqrt(10))  # vs φ(y_n)=[1, 0]
    assert p.summary()["fraction_d1_lt_d2"] == 1.0
    # with all attributes the 0.5 on attribute 4 adds to both
    full = panel_distances("c", Z, ZHAT, PHI, TRUE, WRONG, fraction=1.0)
    assert full.d1[0] == pytest.approx(math.sqrt(4 + 0.25))


def test_eq12_13_robust_vs_standard_uses_the_at_attributes():
    zat = np.array([[0.5, 0, 0, 2.0, 0]])  # |change vs Ẑ| = [.5, 0, 3, 2, .5] -> {2, 3}
    p = panel_distances("b", zat, ZHAT, PHI, TRUE, WRONG, fraction=0.4)
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


def test_histogram_table_columns_and_shared_bins():
    pairs = {
        "untargeted_c": DistancePair(np.array([0.0, 1.0, 3.9]), np.array([2.0, 2.0, 2.0])),
        "targeted_c": DistancePair(np.zeros(0), np.zeros(0)),
    }
    t = histogram_table(pairs, bins=4)
    assert list(t.columns) == [
        "distance",
        "untargeted_c_d1",
        "untargeted_c_d2",
        "targeted_c_d1",
        "targeted_c_d2",
    ]
    width = 3.9 * 1.0001 / 4  # edges span [0, max * 1.0001]
    np.testing.assert_allclose(t["distance"], (np.arange(4) + 0.5) * width)
    assert list(t["untargeted_c_d1"]) == [1, 1, 0, 1] and list(t["untargeted_c_d2"]) == [0, 0, 3, 0]
    assert t["targeted_c_d1"].sum() == 0


def test_figure5_panels_pick_each_panels_images():
    # 4 images, true classes 0, 1, 0, 1; standard: clean all right, adversarial wrong on
    # 0, 1, 2; robust: clean right but 3, adversarial wrong on 2 only.
    true = np.array([0, 1, 0, 1])
    rng = np.random.default_rng(0)
    phi = rng.random((2, 5))

    def model(clean_pred, adv_pred):
        return ModelAttributes(rng.random((4, 5)), rng.random((4, 5)), clean_pred, adv_pred)

    std = model(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 1]))
    rob = model(np.array([0, 1, 0, 0]), np.array([0, 1, 1, 1]))
    pairs, masks = figure5_panels(std, rob, phi, true, fraction=0.4)
    assert {k: m.tolist() for k, m in masks.items()} == {
        "a": [True, True, True, False],  # fooled on the standard model
        "b": [True, True, False, False],  # fooled there, recovered by AT
        "c": [True, True, True, False],
        "d": [False, False, True, False],  # fooled on the robust model (3: wrong when clean)
    }
    a, b, d = masks["a"], masks["b"], masks["d"]
    want_a = panel_distances(
        "a", std.clean[a], std.adversarial[a], phi, true[a], std.adv_pred[a], 0.4
    )
    want_b = panel_distances(
        "b", rob.adversarial[b], std.adversarial[b], phi, true[b], std.adv_pred[b], 0.4
    )
    want_c = panel_distances(
        "c", std.clean[a], std.adversarial[a], phi, true[a], std.adv_pred[a], 0.4
    )
    want_d = panel_distances(
        "d", rob.clean[d], rob.adversarial[d], phi, true[d], rob.adv_pred[d], 0.4
    )
    for key, want in zip("abcd", (want_a, want_b, want_c, want_d), strict=True):
        np.testing.assert_array_equal(pairs[key].d1, want.d1, err_msg=key)
        np.testing.assert_array_equal(pairs[key].d2, want.d2, err_msg=key)


def test_panel_distances_refuses_unknown_panels():
    with pytest.raises(ValueError, match="panel must be one of"):
        panel_distances("e", Z, ZHAT, PHI, TRUE, WRONG)
