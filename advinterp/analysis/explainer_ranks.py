"""Göpfert et al. Table 1: each explainer's mean rank at finding the attacked region.

Kept apart from :mod:`advinterp.analysis.localization_study` (which also draws Figs. 3-4)
so that ``lime_study``, which ranks the same way under other segmentations, does not
depend on the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advinterp.analysis.localization import (
    LocalizationResult,
    evaluate_examples,
    mean_rank_table,
    pixel_maps,
    rank_explainers,
)

RANKED = ("saliency", "guided_backprop", "lime")  # Table 1
ALL = (*RANKED, "random")  # the order of advinterp.explainers.suite.EXPLAINERS


def tie_break(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """The random keys that order equal pixel scores: ``default_rng([seed, 11])``, (H, W)."""
    return np.random.default_rng([seed, 11]).random(shape)


@dataclass(frozen=True)
class Table1:
    """Table 1 of one set of explanations.

    Attributes:
        result: Eqs. 2-3 of every example, size n and explainer of :data:`ALL`.
        mean_rank: explainer -> {"jaccard", "hamming"} mean rank among :data:`RANKED`
            (the paper's Table 1, 1 best .. 3 worst).
        mean_rank_with_random: the same among :data:`ALL` (1 .. 4).
        ranked: (example, n) pairs ranked, i.e. explanations per explainer.
    """

    result: LocalizationResult
    mean_rank: dict[str, dict[str, float]]
    mean_rank_with_random: dict[str, dict[str, float]]
    ranked: int


def table1(loc: Mapping[str, np.ndarray], max_superpixels: int, tie: np.ndarray) -> Table1:
    """Score a set's explanations against its attack regions and rank them (Table 1).

    Args:
        loc: ``region`` (E, H, W), ``lime_segments`` (E, H, W) int, ``lime_top`` (E, T)
            int -1 padded, ``saliency``, ``guided_backprop`` (E, 3, H, W), ``random``
            (E, H, W) (:func:`~advinterp.analysis.localization.pixel_maps`).
        max_superpixels: n_max <= T.
        tie: (H, W) :func:`tie_break` keys.
    """
    regions = np.asarray(loc["region"]).astype(bool)
    adv = evaluate_examples(
        regions, loc["lime_segments"], loc["lime_top"], pixel_maps(loc), max_superpixels, tie, ALL
    )
    # Table 1 over the three explainers, and a 4-way ranking including random.
    table = mean_rank_table(adv.jaccard[..., :3], adv.hamming[..., :3], RANKED)
    table4 = mean_rank_table(adv.jaccard, adv.hamming, ALL)
    ranked = int((~np.isnan(rank_explainers(adv.jaccard[..., :3])).any(-1)).sum())
    return Table1(adv, table, table4, ranked)
