"""How well an explanation recovers the attacked region (Göpfert et al. Sec. 4).

For LIME, the explanation of size n is the union of its n best positively contributing
superpixels S_1 ∪ ... ∪ S_n (n = 1..20). Gradient explainers get the same number of
pixels, |S_1 ∪ ... ∪ S_n|, taken in decreasing order of the l1 norm of their positive
gradients (negative gradients are discarded first, Sec. 4). Each pixel set P is
compared with the attack region C by the Jaccard index (Eq. 2) and the Hamming
likeness (Eq. 3); per example and n the explainers are ranked 1 (best) .. X, and the
mean ranks form Table 1.

When LIME has fewer than n positive superpixels, size n does not exist for that
example: every explainer's value there is NaN and is left out of curves and ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def jaccard(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Jaccard index |P ∩ C| / |P ∪ C| (Eq. 2) of boolean masks; 1 when both are empty.

    Shape:
        p, c: (..., H, W) bool (broadcastable); returns (...) float64 in [0, 1].
    """
    p, c = np.asarray(p, bool), np.asarray(c, bool)
    inter = (p & c).sum(axis=(-2, -1))
    union = (p | c).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def hamming_likeness(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """1 - Ham(P, C) / N (Eq. 3), N the number of pixels of the image.

    Shape:
        p, c: (..., H, W) bool (broadcastable); returns (...) float64 in [0, 1].
    """
    p, c = np.asarray(p, bool), np.asarray(c, bool)
    n = p.shape[-2] * p.shape[-1]
    return 1.0 - (p ^ c).sum(axis=(-2, -1)) / n


def positive_l1(attribution: np.ndarray) -> np.ndarray:
    """Pixel relevance: l1 norm over channels of the positive part of the gradient (Sec. 4).

    Shape:
        attribution: (..., 3, H, W) float; returns (..., H, W) float, >= 0.
    """
    return np.clip(np.asarray(attribution), 0.0, None).sum(axis=-3)


def superpixel_unions(segments: np.ndarray, ranked_ids: Sequence[int], n_max: int) -> np.ndarray:
    """Partial unions S_1 ∪ ... ∪ S_n for n = 1..n_max (n beyond the ids repeats the last).

    Shape:
        segments: (H, W) int superpixel ids; ranked_ids: (m,) best first.
        returns: (n_max, H, W) bool, row n-1 is the union of the first n ids.
    """
    ids = list(ranked_ids)[:n_max]
    out = np.zeros((n_max, *segments.shape), dtype=bool)
    acc = np.zeros(segments.shape, dtype=bool)
    for i in range(n_max):
        if i < len(ids):
            acc = acc | (segments == ids[i])
        out[i] = acc
    return out


def top_pixel_masks(scores: np.ndarray, counts: Sequence[int], tie_break: np.ndarray) -> np.ndarray:
    """The ``counts[i]`` highest-scoring pixels, for each i (equal-pixel-count construction).

    Pixels are ordered by score, descending; equal scores (e.g. many exact zeros of a
    positive-part gradient) are ordered by ``tie_break`` (random keys), never by position.

    Shape:
        scores, tie_break: (H, W) float; counts: (n,) int in [0, H*W].
        returns: (n, H, W) bool with mask i holding exactly counts[i] pixels.
    """
    order = np.lexsort((-tie_break.ravel(), -scores.ravel()))
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    k = np.asarray(counts, dtype=np.int64)
    return (rank[None, :] < k[:, None]).reshape(len(k), *scores.shape)


@dataclass(frozen=True)
class ExampleCurves:
    """Eqs. 2-3 against the attack region for one example, n = 1..n_max.

    Shape:
        sizes: (n_max,) int64 pixels per explanation (|S_1 ∪ ... ∪ S_n|).
        jaccard, hamming: explainer -> (n_max,) float64, NaN for n > n_valid.
    """

    n_valid: int
    sizes: np.ndarray
    jaccard: dict[str, np.ndarray]
    hamming: dict[str, np.ndarray]


def example_curves(
    region: np.ndarray,
    lime_segments: np.ndarray,
    lime_ids: Sequence[int],
    pixel_scores: Mapping[str, np.ndarray],
    n_max: int,
    tie_break: np.ndarray,
    lime_name: str = "lime",
) -> ExampleCurves:
    """Jaccard and Hamming curves of LIME and of every pixel-score explainer.

    Args:
        region: the ground-truth attack region C.
        lime_segments, lime_ids: LIME's superpixels and its positive ones, best first.
        pixel_scores: explainer name -> pixel relevance map (e.g. :func:`positive_l1`).

    Shape:
        region: (H, W) bool; lime_segments: (H, W) int; pixel_scores values: (H, W).
    """
    region = np.asarray(region, bool)
    n_valid = min(len(lime_ids), n_max)
    unions = superpixel_unions(lime_segments, lime_ids, n_max)
    sizes = unions.sum(axis=(1, 2)).astype(np.int64)
    valid = np.arange(1, n_max + 1) <= n_valid
    masks = {lime_name: unions}
    for name, scores in pixel_scores.items():
        masks[name] = top_pixel_masks(np.asarray(scores), sizes, tie_break)
    jac = {k: np.where(valid, jaccard(m, region), np.nan) for k, m in masks.items()}
    ham = {k: np.where(valid, hamming_likeness(m, region), np.nan) for k, m in masks.items()}
    return ExampleCurves(n_valid=n_valid, sizes=sizes, jaccard=jac, hamming=ham)


def rank_explainers(values: np.ndarray) -> np.ndarray:
    """Rank explainers per (example, n): 1 = highest value; ties share the mean rank.

    Shape:
        values: (..., X) float, NaN where the explanation size does not exist.
        returns: (..., X) float64 ranks in [1, X], NaN where any value is NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    ranks = rankdata(-values, method="average", axis=-1)
    bad = np.isnan(values).any(axis=-1, keepdims=True)
    return np.where(bad, np.nan, ranks)


def mean_rank_table(
    jaccard_values: np.ndarray, hamming_values: np.ndarray, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Table 1: each explainer's mean rank over all examples and sizes, by each metric.

    Shape:
        jaccard_values, hamming_values: (E, n_max, X) float, NaN for missing sizes.
    """
    rj = rank_explainers(jaccard_values).reshape(-1, len(names))
    rh = rank_explainers(hamming_values).reshape(-1, len(names))
    rj, rh = rj[~np.isnan(rj).any(1)], rh[~np.isnan(rh).any(1)]
    return {
        name: {
            "jaccard": float(rj[:, i].mean()) if len(rj) else float("nan"),
            "hamming": float(rh[:, i].mean()) if len(rh) else float("nan"),
        }
        for i, name in enumerate(names)
    }


@dataclass(frozen=True)
class LocalizationResult:
    """Eqs. 2-3 for every example, size and explainer.

    Shape:
        sizes: (E, n_max) int64 pixels per explanation; n_valid: (E,) int64.
        jaccard, hamming: (E, n_max, X) float64, NaN where size n does not exist.
    """

    names: tuple[str, ...]
    sizes: np.ndarray
    n_valid: np.ndarray
    jaccard: np.ndarray
    hamming: np.ndarray


def evaluate_examples(
    regions: np.ndarray,
    lime_segments: np.ndarray,
    lime_top: np.ndarray,
    pixel_scores: Mapping[str, np.ndarray],
    n_max: int,
    tie_break: np.ndarray,
    names: Sequence[str],
) -> LocalizationResult:
    """:func:`example_curves` over a set of examples, stacked in the order ``names``.

    Shape:
        regions: (E, H, W) bool; lime_segments: (E, H, W) int; lime_top: (E, T) int,
        -1 padded; pixel_scores values: (E, H, W); tie_break: (H, W).
    """
    E = len(regions)
    X = len(names)
    sizes = np.zeros((E, n_max), np.int64)
    n_valid = np.zeros(E, np.int64)
    jac = np.full((E, n_max, X), np.nan)
    ham = np.full((E, n_max, X), np.nan)
    for e in range(E):
        ids = [int(i) for i in lime_top[e] if i >= 0]
        curves = example_curves(
            regions[e],
            lime_segments[e],
            ids,
            {k: v[e] for k, v in pixel_scores.items()},
            n_max,
            tie_break,
        )
        sizes[e], n_valid[e] = curves.sizes, curves.n_valid
        for x, name in enumerate(names):
            jac[e, :, x] = curves.jaccard[name]
            ham[e, :, x] = curves.hamming[name]
    return LocalizationResult(tuple(names), sizes, n_valid, jac, ham)


def lime_pixel_scores(
    segments: np.ndarray, top_ids: Sequence[int], weights: Sequence[float]
) -> np.ndarray:
    """A pixel map of LIME: the weight of the pixel's superpixel if it is a kept positive one.

    Shape:
        segments: (H, W) int; top_ids, weights: (T,), ids < 0 are padding.
        returns: (H, W) float64, >= 0.
    """
    lut = np.zeros(int(segments.max()) + 1)
    for i, w in zip(top_ids, weights, strict=True):
        if i >= 0:
            lut[int(i)] = max(float(w), 0.0)
    return lut[segments]


def top_set_overlap(a: np.ndarray, b: np.ndarray, k: int, tie_break: np.ndarray) -> float:
    """Jaccard index of the k highest-scoring pixels of two maps (explanation stability).

    Shape:
        a, b, tie_break: (H, W) float.
    """
    ma = top_pixel_masks(a, [k], tie_break)[0]
    mb = top_pixel_masks(b, [k], tie_break)[0]
    return float(jaccard(ma, mb))


def pixel_maps(explained: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The relevance maps the evaluation ranks pixels by, per pixel-score explainer.

    Saliency and guided backprop: :func:`positive_l1` of their attributions; the random
    baseline: its scores as they are.

    Shape:
        explained: ``saliency``, ``guided_backprop`` (E, 3, H, W); ``random`` (E, H, W).
        returns: name -> (E, H, W).
    """
    return {
        "saliency": positive_l1(explained["saliency"]),
        "guided_backprop": positive_l1(explained["guided_backprop"]),
        "random": explained["random"],
    }


def lime_maps(explained: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`lime_pixel_scores` of every example of a set.

    Shape:
        explained: ``lime_segments`` (E, H, W) int; ``lime_top``, ``lime_weights`` (E, T).
        returns: (E, H, W) float64, >= 0.
    """
    segments, top, weights = (
        explained["lime_segments"],
        explained["lime_top"],
        explained["lime_weights"],
    )
    if not len(top):
        return np.zeros(segments.shape)
    return np.stack([lime_pixel_scores(segments[i], top[i], weights[i]) for i in range(len(top))])


def nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (NaN where every value is NaN), without warnings.

    Shape:
        a: (E, ...) float; returns (...) float64.
    """
    ok = ~np.isnan(a)
    count = ok.sum(0)
    return np.where(count > 0, np.where(ok, a, 0.0).sum(0) / np.maximum(count, 1), np.nan)
