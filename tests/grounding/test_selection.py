"""Eqs. 16-17 and the most-changed attributes on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.grounding.selection import (
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
    idx, imp = select_clean(Z, PHI, wrong=np.array([1]), k=2)
    # Z - φ(1) = [0.9, -0.9, 0.6, -0.3] -> attributes 0 then 2
    assert idx.tolist() == [[0, 2]]
    np.testing.assert_allclose(imp, [[0.9, 0.6]], rtol=1e-6)


def test_eq17_adversarial_attributes_against_the_true_class():
    Zhat = np.array([[0.2, 0.8, 0.1, 0.6]])
    idx, imp = select_adversarial(Zhat, PHI, true=np.array([0]), k=3)
    # Ẑ - φ(0) = [-0.8, 0.8, -0.4, 0.6] -> 1, 3, 2
    assert idx.tolist() == [[1, 3, 2]]
    np.testing.assert_allclose(imp, [[0.8, 0.6, -0.4]], rtol=1e-6)


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
