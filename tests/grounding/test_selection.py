"""Eqs. 16-17 and the most-changed attributes on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.grounding.selection import (
    l2_rows,
    most_changed,
    select_adversarial,
    select_clean,
    top_k_by_margin,
)

PHI = np.array(
    [
        [1.0, 0.0, 0.5, 0.0],  # class 0
        [0.0, 1.0, 0.0, 0.5],  # class 1
    ]
)


def test_eq16_clean_attributes_against_the_wrong_class():
    # clean image of class 0 predicted attributes; the attack made it class 1.
    Z = np.array([[0.9, 0.1, 0.6, 0.2]])
    idx, imp = select_clean(Z, PHI, wrong=np.array([1]), k=2, normalize="none")
    # Z - φ(1) = [0.9, -0.9, 0.6, -0.3] -> attributes 0 then 2
    assert idx.tolist() == [[0, 2]]
    np.testing.assert_allclose(imp, [[0.9, 0.6]], rtol=1e-6)


def test_eq17_adversarial_attributes_against_the_true_class():
    Zhat = np.array([[0.2, 0.8, 0.1, 0.6]])
    idx, imp = select_adversarial(Zhat, PHI, true=np.array([0]), k=3, normalize="none")
    # Ẑ - φ(0) = [-0.8, 0.8, -0.4, 0.6] -> 1, 3, 2
    assert idx.tolist() == [[1, 3, 2]]
    np.testing.assert_allclose(imp, [[0.8, 0.6, -0.4]], rtol=1e-6)


def test_default_margin_uses_unit_norm_attributes():
    Z = np.array([[3.0, 4.0, 0.0, 0.0]])  # norm 5 -> [0.6, 0.8, 0, 0]
    idx, imp = select_clean(Z, PHI, wrong=np.array([1]), k=2)
    # Ẑ/||Ẑ|| - φ(1) = [0.6, -0.2, 0, -0.5] -> attributes 0 then 2
    assert idx.tolist() == [[0, 2]]
    np.testing.assert_allclose(imp, [[0.6, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        select_clean(Z, PHI, np.array([1]), 2, normalize="unit")  # type: ignore[arg-type]


def test_l2_selection_ignores_the_scale_of_theta_w():
    # SJE leaves ||θ(x)W|| free: rescaling an image's predicted attributes must not change
    # which attributes Eqs. 16/17 pick. The raw reading does change: at a small norm the
    # margin is -φ, at a large one it is Z.
    rng = np.random.default_rng(0)
    phi = l2_rows(rng.normal(size=(5, 12)))
    Z = rng.normal(size=(6, 12))
    wrong, true = rng.integers(0, 5, size=6), rng.integers(0, 5, size=6)
    scale = np.array([[0.01], [0.1], [1.0], [6.4], [50.0], [1e3]])
    for select, cls in ((select_clean, wrong), (select_adversarial, true)):
        idx, imp = select(Z, phi, cls, 4)
        idx_s, imp_s = select(Z * scale, phi, cls, 4)
        assert idx_s.tolist() == idx.tolist()
        np.testing.assert_allclose(imp_s, imp, rtol=1e-5)
        raw = [select(Z * s, phi, cls, 4, normalize="none")[0].tolist() for s in (1e-3, 1e3)]
        assert raw[0] != raw[1]


def test_l2_selection_depends_on_phi_where_the_raw_reading_did_not():
    # ||Z|| ~ 118 with gaps of 10 between attributes: the raw margin Z - φ ranks like Z
    # whatever φ is (|φ^i| <= 1); on φ's scale the class embedding decides.
    Z = 10.0 * np.array([[7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    phi_a = np.eye(8)[[3, 0]]  # the class argued against (1) has only attribute 0
    phi_b = np.eye(8)[[3, 7]]  # ... only attribute 7
    cls = np.array([1])
    for select in (select_clean, select_adversarial):
        raw_a = select(Z, phi_a, cls, 3, normalize="none")[0].tolist()
        raw_b = select(Z, phi_b, cls, 3, normalize="none")[0].tolist()
        assert raw_a == raw_b == [[0, 1, 2]]  # the old reading: top-3 predicted attributes
        assert select(Z, phi_a, cls, 3)[0].tolist() == [[1, 2, 3]]
        assert select(Z, phi_b, cls, 3)[0].tolist() == [[0, 1, 2]]


def test_selection_is_per_image_and_k_is_capped():
    Z = np.array([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    idx, imp = top_k_by_margin(Z, np.zeros_like(Z), k=10)
    assert idx.shape == (2, 4)
    assert idx[0, 0] == 3 and idx[1, 0] == 0
    assert np.all(np.diff(imp, axis=1) <= 0)  # ranked by importance
    assert idx[0].tolist() == [3, 0, 1, 2]  # ties keep attribute order
    with pytest.raises(ValueError, match="equal"):
        top_k_by_margin(Z, Z[:1], 2)
    with pytest.raises(ValueError, match="k must"):
        top_k_by_margin(Z, Z, 0)


def test_most_changed_per_image_and_global():
    before = np.zeros((2, 10))
    after = np.zeros((2, 10))
    after[0, [7, 2]] = [1.0, -3.0]  # |change| ranks 2 then 7
    after[1, [0, 5]] = [0.5, 0.1]
    mask = most_changed(before, after, 0.2)  # ceil(0.2 * 10) = 2 attributes per image
    assert mask.sum(axis=1).tolist() == [2, 2]
    assert np.flatnonzero(mask[0]).tolist() == [2, 7]
    assert np.flatnonzero(mask[1]).tolist() == [0, 5]
    glob = most_changed(before, after, 0.2, scope="global")  # mean |change|: 2, 7 lead
    assert np.flatnonzero(glob[0]).tolist() == [2, 7] == np.flatnonzero(glob[1]).tolist()
    assert most_changed(before, after, 0.25).sum(axis=1).tolist() == [3, 3]  # ceil(2.5)
    assert most_changed(before, after, 1.0).all()
    with pytest.raises(ValueError, match="fraction"):
        most_changed(before, after, 0.0)
    with pytest.raises(ValueError, match="scope"):
        most_changed(before, after, 0.2, scope="image")
