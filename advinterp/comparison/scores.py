"""Scores of explanation maps against references and against each other, with the exact
expectation of a random map beside each.

A map is an (H, W) array of non-negative pixel relevance; only its pixel order counts,
so maps in different units (gradients, masks, box weights) are comparable. Equal
scores (the zeros outside LIME's kept superpixels or outside detected boxes, the
many equal values of an L-inf perturbation) are ordered by random keys shared by
every map of one example, never by position.

* ``overlap(m, R)``: the share of the ``|R|`` top pixels of ``m`` that lie in the
  reference set ``R`` (relevance rank accuracy, Arras et al. 2022). A uniformly
  random map scores ``|R| / N`` in expectation, exactly; the map that ranks ``R``
  first scores 1.
* ``spearman(a, b)``: rank correlation of two maps (average ranks for ties); 0 in
  expectation for independent random maps.
* ``top_jaccard(a, b, k)``: Jaccard index of the k top pixels of two maps; a random
  pair gives ``E[X / (2k - X)]``, X hypergeometric (:func:`expected_jaccard`).

Written here rather than taken from Quantus: its localisation metrics take one map
and one mask through a framework of model calls and batch conventions, and none of
them states the random expectation, which every number here is read against.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from advinterp.analysis.localization import jaccard, top_pixel_masks


def tie_keys(shape: tuple[int, int], seed: int | list[int]) -> np.ndarray:
    """Random keys that order equal scores of one example's maps (shared by all of them).

    Shape: returns ``shape`` float64 in [0, 1).
    """
    return np.random.default_rng(seed).random(shape)


def top_count(fraction: float, total: int) -> int:
    """k = ceil(fraction * total), at least 1: the size of a top-``fraction`` set."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    return max(1, math.ceil(fraction * total - 1e-9))


def top_share(values: np.ndarray, fraction: float) -> np.ndarray:
    """Where a perturbation is: the pixels of ``values`` at or above its k-th largest value
    (k = ``top_count(fraction, H*W)``), ties included, zeros never.

    Ties are kept rather than broken because they are the perturbation's own: after
    a few IFGSM steps most pixels sit at the same ``|δ| = eps``, and any choice among
    them would be arbitrary. The set can therefore exceed k pixels; its size enters
    the random expectation.

    Shape:
        values: (H, W) float >= 0 (e.g. ``|x̂ - x|`` summed over channels).
        returns: (H, W) bool.
    """
    flat = np.asarray(values, np.float64).ravel()
    k = top_count(fraction, flat.size)
    kth = np.partition(flat, flat.size - k)[flat.size - k]
    return ((values >= kth) & (values > 0)).reshape(np.shape(values))


def overlap(scores: np.ndarray, region: np.ndarray, tie_break: np.ndarray) -> float:
    """Share of the ``|region|`` top pixels of ``scores`` that lie in ``region``.

    NaN for an empty region (nothing to find).

    Shape:
        scores, tie_break: (H, W) float; region: (H, W) bool.
    """
    region = np.asarray(region, bool)
    r = int(region.sum())
    if r == 0:
        return float("nan")
    top = top_pixel_masks(np.asarray(scores, np.float64), [r], tie_break)[0]
    return float((top & region).sum() / r)


def expected_overlap(region: np.ndarray) -> float:
    """E[overlap] of a uniformly random map: ``|region| / N`` (NaN for an empty region).

    A random ranking's top-r set is a uniform r-subset, so each pixel of the region is
    in it with probability r / N, and the expected share is (r * r / N) / r.
    """
    region = np.asarray(region, bool)
    r = int(region.sum())
    return float("nan") if r == 0 else r / region.size


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps' pixels (average ranks for ties).

    NaN when either map is constant (it orders nothing).

    Shape: a, b: (H, W) float.
    """
    ra = rankdata(np.asarray(a, np.float64).ravel())
    rb = rankdata(np.asarray(b, np.float64).ravel())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float("nan") if denom == 0 else float(ra @ rb) / denom


def top_jaccard(a: np.ndarray, b: np.ndarray, k: int, tie_break: np.ndarray) -> float:
    """Jaccard index of the ``k`` top pixels of two maps (ties ordered by ``tie_break``).

    Shape: a, b, tie_break: (H, W) float.
    """
    ma = top_pixel_masks(np.asarray(a, np.float64), [k], tie_break)[0]
    mb = top_pixel_masks(np.asarray(b, np.float64), [k], tie_break)[0]
    return float(jaccard(ma, mb))


def box_mask(xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies in any of the boxes.

    Shape:
        xyxy: (M, 4) float (x0, y0, x1, y1) as fractions of width and height.
        returns: (H, W) bool for ``size = (H, W)``.
    """
    return box_weights(xyxy, np.ones(len(xyxy)), size) > 0


def box_weights(xyxy: np.ndarray, weights: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A map holding, at each pixel, the sum of the weights of the boxes covering it.

    Shape:
        xyxy: (M, 4) float fractions of width and height; weights: (M,) float.
        returns: (H, W) float64 for ``size = (H, W)``.
    """
    h, w = size
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    out = np.zeros((h, w))
    for (x0, y0, x1, y1), weight in zip(np.asarray(xyxy), np.asarray(weights), strict=True):
        rows = (ys >= y0) & (ys < y1)
        cols = (xs >= x0) & (xs < x1)
        out[np.ix_(rows, cols)] += weight
    return out
