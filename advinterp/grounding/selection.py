"""Which predicted attributes to ground: Gulshad et al. Sec. 4.3, Eqs. 16-17.

For an image correctly classified as ``y_n`` when clean and misclassified as ``y``
when perturbed, the attributes worth showing are those that argue most for the
predicted class against the other one:

* clean image (and adversarial image under adversarial training), Eq. 16:
  ``q = argmax_i (Z^i_{n,y_n} - φ(y)^i)`` -- predicted clean attributes that exceed
  the *wrong* class's attributes the most;
* adversarial image, Eq. 17: ``p = argmax_i (Ẑ^i_{n,y} - φ(y_n)^i)`` -- predicted
  adversarial attributes that exceed the *correct* class's attributes the most.

The paper keeps the top k (50 of 312 for CUB, 50 of 85 for AwA, 100 of 359 for LAD)
and ranks them by that difference, its "importance".

Scale: φ is l2-normalised but SJE leaves the norm of ``θ(x)W`` free (its ranking loss
only compares classes), and a norm several times φ's makes ``Z - φ`` rank almost exactly
like ``Z``: φ barely counts and the selection is "the top-k predicted attributes".
``normalize="l2"`` (the default) scales each image's predicted attributes to unit norm
first, as the distances of Sec. 4.2 do, so both terms of the margin are on one scale and
the selection no longer depends on ``||θ(x)W||``; ``"none"`` is the raw reading.

Also here: the "top 20% most-changed attributes" of Sec. 4.2, which restricts the
distances of Eqs. 8-15 to the attributes an attack moves most.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

Normalize = Literal["l2", "none"]


def l2_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (zero rows stay zero). Shape: (N, A) -> (N, A)."""
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def scaled(predicted: np.ndarray, normalize: Normalize) -> np.ndarray:
    """Predicted attributes on φ's scale: unit rows for ``l2``, as they are for ``none``.

    Shape: (N, A) -> (N, A) float64.
    """
    if normalize == "l2":
        return l2_rows(predicted)
    if normalize != "none":
        raise ValueError(f"normalize must be 'l2' or 'none', not {normalize!r}")
    return np.asarray(predicted, np.float64)


def top_k_by_margin(
    predicted: np.ndarray, reference: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` largest ``predicted - reference``, largest first.

    Shape:
        predicted: (N, A) float predicted attributes (SJE's θ(x)W).
        reference: (N, A) float class embedding φ(·) of the class argued against.
        returns: indices (N, k') int64 and importance (N, k') float32 (the margin),
        k' = min(k, A), sorted by decreasing margin (ties: lower index first).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if predicted.shape != reference.shape or predicted.ndim != 2:
        raise ValueError(f"shapes {predicted.shape} and {reference.shape}: need equal (N, A)")
    if k < 1:
        raise ValueError("k must be at least 1")
    margin = predicted - reference
    k = min(k, margin.shape[1])
    order = np.argsort(-margin, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(margin, order, 1).astype(np.float32)


def select_clean(
    Z: np.ndarray,
    class_embeddings: np.ndarray,
    wrong: np.ndarray,
    k: int,
    normalize: Normalize = "l2",
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 16: top-k of ``Z_{n,y_n} - φ(y)`` with ``y`` the class the attack produced.

    Also used for adversarial images under adversarial training (``Z`` = Ẑ^AT).
    ``normalize`` puts ``Z`` on φ's scale first (see the module docstring).

    Shape:
        Z: (N, A) predicted attributes; class_embeddings: (C, A) φ;
        wrong: (N,) int wrong class y per image. Returns as :func:`top_k_by_margin`.
    """
    return top_k_by_margin(scaled(Z, normalize), class_embeddings[np.asarray(wrong)], k)


def select_adversarial(
    Zhat: np.ndarray,
    class_embeddings: np.ndarray,
    true: np.ndarray,
    k: int,
    normalize: Normalize = "l2",
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 17: top-k of ``Ẑ_{n,y} - φ(y_n)`` with ``y_n`` the true class.

    ``normalize`` puts ``Ẑ`` on φ's scale first (see the module docstring).

    Shape:
        Zhat: (N, A) predicted attributes of the adversarial images;
        true: (N,) int correct class per image. Returns as :func:`top_k_by_margin`.
    """
    return top_k_by_margin(scaled(Zhat, normalize), class_embeddings[np.asarray(true)], k)


def most_changed(
    before: np.ndarray, after: np.ndarray, fraction: float, scope: str = "per_image"
) -> np.ndarray:
    """Mask of the ``fraction`` of attributes whose value changes most (Sec. 4.2).

    ``per_image`` ranks ``|after - before|`` within each image (the attributes this
    perturbation moved); ``global`` ranks the mean absolute change over all images
    and keeps the same attributes for every image.

    Shape:
        before, after: (N, A) float. returns: (N, A) bool with ceil(fraction * A)
        True per row (ties: lower index first).
    """
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    if before.shape != after.shape or before.ndim != 2:
        raise ValueError(f"shapes {before.shape} and {after.shape}: need equal (N, A)")
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must lie in (0, 1]")
    n, a = before.shape
    m = max(1, math.ceil(fraction * a - 1e-9))
    change = np.abs(after - before)
    if scope == "global":
        change = np.broadcast_to(change.mean(axis=0, keepdims=True), change.shape)
    elif scope != "per_image":
        raise ValueError(f"scope must be 'per_image' or 'global', not {scope!r}")
    keep = np.argsort(-change, axis=1, kind="stable")[:, :m]
    mask = np.zeros((n, a), dtype=bool)
    np.put_along_axis(mask, keep, True, axis=1)
    return mask
