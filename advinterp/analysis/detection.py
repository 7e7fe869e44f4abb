"""Classification-interpretation contrastive detection (Nguyen et al., Sec. 2-3).

An input x is flagged adversarial when the mask classifier's class for its attention
mask, y2 = f2(g(x)), differs from the image classifier's class y1 = f1(x) (Fig. 2).
Adversarial examples are the positive class. The tables of Sec. 3:

* Table 1: fraction of adversarial examples whose mask keeps its benign classification,
  f2(g(x*)) == f2(g(x)).
* Tables 2 and 3: true-positive rate on adversarial examples (direct and transferred)
  and true-negative rate on as many benign images.
* Table 4: the same on the images whose benign mask f2 classifies correctly, plus the
  recovery rate, f2(g(x*)) == true class.

Beyond the paper: a graded detection score, 1 - p_f2(y1 | g(x)), one minus the
probability f2 gives to f1's class (the hard rule flags when f2's top class is not y1;
a score below 1/2 never is), from which the ROC curve and its AUC follow.

All functions take plain integer/float arrays and are independent of torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def flag_adversarial(f1_pred: np.ndarray, f2_pred: np.ndarray) -> np.ndarray:
    """The detection rule: adversarial iff f2's class differs from f1's.

    Shape:
        f1_pred, f2_pred: (N,) int -> (N,) bool.
    """
    f1_pred, f2_pred = np.asarray(f1_pred), np.asarray(f2_pred)
    if f1_pred.shape != f2_pred.shape:
        raise ValueError(f"prediction shapes differ: {f1_pred.shape} vs {f2_pred.shape}")
    return f1_pred != f2_pred


def detection_score(f2_proba: np.ndarray, f1_pred: np.ndarray) -> np.ndarray:
    """Graded score for "adversarial": 1 - f2's probability of f1's class.

    Shape:
        f2_proba: (N, K) rows summing to 1; f1_pred: (N,) int -> (N,) float in [0, 1].
    """
    f2_proba = np.asarray(f2_proba, dtype=np.float64)
    return 1.0 - f2_proba[np.arange(len(f2_proba)), np.asarray(f1_pred)]


def rate(flags: np.ndarray) -> float | None:
    """Mean of a boolean array; None for an empty one (nothing to measure)."""
    flags = np.asarray(flags, dtype=bool)
    return float(flags.mean()) if flags.size else None


def roc(
    scores_adv: np.ndarray, scores_benign: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """ROC curve (adversarial = positive) and its AUC; AUC is None if a class is empty.

    Returns:
        fpr (T,), tpr (T,), auc.
    """
    scores_adv, scores_benign = np.asarray(scores_adv), np.asarray(scores_benign)
    if not scores_adv.size or not scores_benign.size:
        return np.zeros(0), np.zeros(0), None
    y = np.r_[np.ones(len(scores_adv)), np.zeros(len(scores_benign))]
    s = np.r_[scores_adv, scores_benign]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, float(roc_auc_score(y, s))


@dataclass(frozen=True)
class DetectionRow:
    """One row of Tables 1-4 for one attack setting."""

    n_adversarial: int
    n_benign: int
    mask_class_kept: float | None  # Table 1
    true_positive: float | None  # Tables 2-4
    true_negative: float | None
    recovery: float | None  # Table 4 (defined for every setting)
    auc: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def detection_row(
    *,
    adv_f1: np.ndarray,
    adv_f2: np.ndarray,
    adv_f2_benign: np.ndarray,
    adv_labels: np.ndarray,
    benign_f1: np.ndarray,
    benign_f2: np.ndarray,
    adv_scores: np.ndarray | None = None,
    benign_scores: np.ndarray | None = None,
) -> DetectionRow:
    """Table entries for adversarial examples and a benign set.

    Args:
        adv_f1: f1's class on each adversarial example x* (M,).
        adv_f2: f2's class on g(x*) (M,).
        adv_f2_benign: f2's class on g(x) of the benign original of each x* (M,).
        adv_labels: true class of each x* (M,).
        benign_f1, benign_f2: f1's class on benign images and f2's on their masks (B,).
        adv_scores, benign_scores: :func:`detection_score` values for the ROC (optional).
    """
    auc = None
    if adv_scores is not None and benign_scores is not None:
        auc = roc(adv_scores, benign_scores)[2]
    return DetectionRow(
        n_adversarial=len(adv_f1),
        n_benign=len(benign_f1),
        mask_class_kept=rate(np.asarray(adv_f2) == np.asarray(adv_f2_benign)),
        true_positive=rate(flag_adversarial(adv_f1, adv_f2)),
        true_negative=rate(~flag_adversarial(benign_f1, benign_f2)),
        recovery=rate(np.asarray(adv_f2) == np.asarray(adv_labels)),
        auc=auc,
    )


def balanced_benign(pool: np.ndarray, n: int, order: np.ndarray) -> np.ndarray:
    """The benign half of a balanced set: the first ``n`` entries of ``pool`` in ``order``.

    Using one fixed (seeded) order for every attack makes the benign sets nested, so the
    true-negative rates of different attacks differ only by the set size (the paper
    reports one benign rate per table). ``n`` larger than the pool takes the whole pool.

    Args:
        pool: candidate benign indices (P,); order: a permutation of a superset of pool.
    """
    keep = order[np.isin(order, pool)]
    return keep[: min(n, len(keep))]
