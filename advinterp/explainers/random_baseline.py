"""The random baseline: pixels ranked in a uniformly random order.

Göpfert et al. Sec. 4, Fig. 4: "selecting pixels at random yields a very low Jaccard
index". The scores are i.i.d. uniform, so the top-k pixels of a map are a uniformly
random k-subset; :func:`expected_jaccard` / :func:`expected_hamming` give the exact
expectation of Eqs. 2-3 for such a subset (hypergeometric overlap).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import gammaln

from advinterp.explainers.protocol import Example, SeededExplainer, ShapeKind


def random_scores(n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """I.i.d. uniform pixel scores: ranking by them picks a uniformly random subset.

    Shape:
        returns: (n, height, width) float32 in [0, 1).
    """
    return rng.random((n, height, width), dtype=np.float32)


@dataclass(frozen=True)
class RandomExplainer(SeededExplainer):
    """The random baseline as an :class:`~advinterp.explainers.protocol.Explainer`.

    Example i draws its map from ``default_rng([seed, image_set, 7, start + i])``
    (``where``), so it does not depend on the batch it comes in; model and targets
    are ignored. Returns ``{"random": (N, H, W) float32 in [0, 1)}``.
    """

    name: ClassVar[str] = "random"
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]] = {"random": ("map", "float32")}

    def explain_example(self, example: Example) -> dict[str, np.ndarray]:
        """``{"random": (H, W) float32}`` i.i.d. uniform scores."""
        _, h, w = example.image.shape
        key = [example.seed, example.image_set, 7, example.position]
        return {"random": random_scores(1, h, w, np.random.default_rng(key))[0]}


def expected_jaccard(k: int, region: int, total: int) -> float:
    """E[J(P, C)] for P a uniformly random k-subset of ``total`` pixels, |C| = ``region``.

    With X = |P ∩ C| ~ Hypergeom(total, region, k), J = X / (k + region - X).
    """
    if k == 0 and region == 0:
        return 0.0
    x = np.arange(max(0, k + region - total), min(k, region) + 1)
    # Hypergeometric pmf from log-binomials (scipy.stats.hypergeom.pmf costs ~10 ms a call).
    log_pmf = _log_choose(region, x) + _log_choose(total - region, k - x) - _log_choose(total, k)
    return float(np.sum(np.exp(log_pmf) * x / (k + region - x)))


def _log_choose(n: float, r: np.ndarray | int) -> np.ndarray:
    return gammaln(n + 1) - gammaln(np.asarray(r) + 1) - gammaln(n - np.asarray(r) + 1)


def expected_hamming(k: int, region: int, total: int) -> float:
    """E[H(P, C)] (Eq. 3) for a random k-subset: 1 - (k + |C| - 2 E[X]) / N, E[X] = k|C|/N."""
    return 1.0 - (k + region - 2.0 * k * region / total) / total


def expected_random_curves(
    regions: np.ndarray, sizes: np.ndarray, n_valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The random baseline's expected Jaccard index and Hamming likeness per example and n.

    Row e holds :func:`expected_jaccard` / :func:`expected_hamming` of a random
    ``sizes[e, i]``-pixel set against region e for the ``n_valid[e]`` sizes that exist.

    Shape:
        regions: (E, H, W) bool; sizes: (E, n_max) int; n_valid: (E,) int.
        returns: two (E, n_max) float64, NaN beyond ``n_valid``.
    """
    E, n_max = sizes.shape
    total = regions.shape[1] * regions.shape[2]
    exp_j = np.full((E, n_max), np.nan)
    exp_h = np.full((E, n_max), np.nan)
    for e in range(E):
        c = int(regions[e].sum())
        for i in range(int(n_valid[e])):
            exp_j[e, i] = expected_jaccard(int(sizes[e, i]), c, total)
            exp_h[e, i] = expected_hamming(int(sizes[e, i]), c, total)
    return exp_j, exp_h
