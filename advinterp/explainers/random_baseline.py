"""The random baseline: pixels ranked in a uniformly random order.

Göpfert et al. Sec. 4, Fig. 4: "selecting pixels at random yields a very low Jaccard
index". The scores are i.i.d. uniform, so the top-k pixels of a map are a uniformly
random k-subset; :func:`expected_jaccard` / :func:`expected_hamming` give the exact
expectation of Eqs. 2-3 for such a subset (hypergeometric overlap).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def random_scores(n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """I.i.d. uniform pixel scores: ranking by them picks a uniformly random subset.

    Shape:
        returns: (n, height, width) float32 in [0, 1).
    """
    return rng.random((n, height, width), dtype=np.float32)


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
