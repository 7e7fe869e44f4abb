"""Detection rule and Nguyen et al.'s table entries on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.analysis.detection import (
    balanced_benign,
    detection_row,
    detection_score,
    flag_adversarial,
    rate,
    roc,
)


def test_rule_flags_exactly_where_f2_disagrees_with_f1():
    f1 = np.array([0, 1, 2, 3, 3])
    f2 = np.array([0, 2, 2, 1, 3])
    np.testing.assert_array_equal(flag_adversarial(f1, f2), [False, True, False, True, False])
    with pytest.raises(ValueError, match="shapes differ"):
        flag_adversarial(f1, f2[:3])


def test_table_entries_by_hand():
    # Four adversarial examples of true classes 0, 1, 2, 3; f1 is fooled on all of them.
    row = detection_row(
        adv_f1=np.array([5, 5, 0, 1]),
        adv_f2=np.array([0, 5, 2, 2]),  # flagged: 0!=5 yes, 5==5 no, 2!=0 yes, 2!=1 yes -> 3/4
        adv_f2_benign=np.array([0, 1, 2, 0]),  # mask class kept: yes, no, yes, no -> 2/4
        adv_labels=np.array([0, 1, 2, 3]),  # recovered: yes, no, yes, no -> 2/4
        # Five benign images: f1 and f2 agree on 0, 2, 4 -> true negatives 3/5.
        benign_f1=np.array([1, 2, 3, 4, 5]),
        benign_f2=np.array([1, 0, 3, 0, 5]),
    )
    assert row.n_adversarial == 4 and row.n_benign == 5
    assert row.true_positive == pytest.approx(0.75)
    assert row.true_negative == pytest.approx(0.6)
    assert row.mask_class_kept == pytest.approx(0.5)
    assert row.recovery == pytest.approx(0.5)
    assert row.auc is None  # no scores given


def test_empty_sets_give_none_not_nan():
    e = np.zeros(0, np.int64)
    row = detection_row(
        adv_f1=e,
        adv_f2=e,
        adv_f2_benign=e,
        adv_labels=e,
        benign_f1=e,
        benign_f2=e,
        adv_scores=np.zeros(0),
        benign_scores=np.zeros(0),
    )
    assert row.true_positive is None and row.true_negative is None and row.auc is None
    assert rate(np.zeros(0, bool)) is None


def test_score_is_one_minus_f2_probability_of_f1_class():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(detection_score(proba, np.array([0, 0])), [0.3, 0.9])
    # A score below 1/2 means f2 gives f1's class over 1/2: its top class, never flagged.
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4) * 0.3, size=500)
    f1 = rng.integers(0, 4, 500)
    low = detection_score(p, f1) < 0.5
    assert low.any() and not flag_adversarial(f1, p.argmax(1))[low].any()


def test_roc_auc_by_hand():
    # Adversarial scores 0.9, 0.4; benign 0.1, 0.5: pairs ranked right 3 of 4 -> AUC 0.75.
    fpr, tpr, auc = roc(np.array([0.9, 0.4]), np.array([0.1, 0.5]))
    assert auc == pytest.approx(0.75)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert roc(np.array([0.5]), np.zeros(0))[2] is None


def test_balanced_benign_takes_a_nested_prefix_in_a_fixed_order():
    order = np.array([7, 3, 9, 1, 5])
    np.testing.assert_array_equal(balanced_benign(np.array([1, 3, 5, 7, 9]), 2, order), [7, 3])
    np.testing.assert_array_equal(balanced_benign(np.array([1, 5, 9]), 2, order), [9, 1])
    np.testing.assert_array_equal(balanced_benign(np.array([1, 5]), 10, order), [1, 5])
