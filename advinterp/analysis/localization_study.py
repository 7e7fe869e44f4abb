"""How well explainers recover localized attacks: the ``explain_eval`` experiment.

Göpfert et al. Sec. 4: for n = 1..n_max LIME superpixels and the same pixel counts for
the gradient explainers and the random baseline, the Jaccard index (Eq. 2) and Hamming
likeness (Eq. 3) against the attack region; per-example ranks and their means
(Table 1); mean curves beside the random baseline's exact expectation (Fig. 4); example
panels (Fig. 3); the same scores on the clean source images as a control; and how far
each explanation moves between a clean image and its adversarial versions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from matplotlib.figure import Figure

from advinterp.analysis.explainer_ranks import ALL, RANKED, table1, tie_break
from advinterp.analysis.localization import (
    evaluate_examples,
    lime_maps,
    nanmean0,
    pixel_maps,
    rank_explainers,
    top_set_overlap,
)
from advinterp.analysis.localization_figures import curves_figure, figure3, sets_figure
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.random_baseline import expected_random_curves
from advinterp.store import str_list_attr

log = logging.getLogger(__name__)

PAPER_TABLE1 = {
    "saliency": {"jaccard": 2.58, "hamming": 2.59},
    "guided_backprop": {"jaccard": 2.06, "hamming": 2.03},
    "lime": {"jaccard": 1.36, "hamming": 1.38},
}
SET_ARRAYS = (
    "rows",
    "saliency",
    "guided_backprop",
    "random",
    "lime_segments",
    "lime_top",
    "lime_weights",
)
MAPS = ("saliency", "guided_backprop", "random")

Sets = Mapping[str, Mapping[str, np.ndarray]]


def _read_set(root: zarr.Group, name: str, origin: Path | str) -> dict[str, np.ndarray]:
    group = root.get(name)
    if not isinstance(group, zarr.Group):
        raise StoreError(f"{origin}: missing group '{name}' (rerun explain)")
    out = {key: np.asarray(arr[:]) for key, arr in group.arrays()}
    need = SET_ARRAYS + (("region", "clean_index") if name == "localized" else ())
    for key in need:
        if key not in out:
            raise StoreError(f"{origin}: missing array '{name}/{key}' (rerun explain)")
    for key in MAPS:
        if not np.isfinite(out[key]).all():
            raise StoreError(f"{origin}: '{name}/{key}' holds NaN or inf values")
    return out


def read_explained_sets(root: zarr.Group, origin: Path | str) -> dict[str, dict[str, np.ndarray]]:
    """Every set of an explanations store, checked: present, complete, maps free of NaN/inf.

    Raises:
        StoreError: naming ``origin``: no localized or clean set, a missing array, a
            non-finite map, or no localized example at all.
    """
    sets = str_list_attr(root, "sets", str(origin), default=[])
    if "localized" not in sets or "clean" not in sets:
        raise StoreError(f"{origin}: needs the 'localized' and 'clean' sets")
    out = {name: _read_set(root, name, origin) for name in ("localized", "clean")}
    if "ifgsm" in sets:
        out["ifgsm"] = _read_set(root, "ifgsm", origin)
    if len(out["localized"]["rows"]) == 0:
        raise StoreError(f"{origin}: no localized adversarial examples to evaluate")
    return out


@dataclass(frozen=True)
class LocalizationStudy:
    """What ``explain_eval`` reports.

    Attributes:
        jaccard, hamming: Fig. 4 curves, columns ``n``, each of :data:`ALL`,
            ``random_expected`` and ``examples`` (how many examples have size n).
        per_example: one row per example, size and explainer with both scores, ranks
            and the clean control's Jaccard index.
        metrics: mean ranks (Table 1, and with random), mean scores, controls, overlaps.
        figures: ``examples`` (Fig. 3), ``curves`` (Fig. 4), ``sets`` (side by side).
    """

    jaccard: pd.DataFrame
    hamming: pd.DataFrame
    per_example: pd.DataFrame
    metrics: dict[str, Any]
    figures: dict[str, Figure]


def localization_study(
    sets: Sets, *, max_superpixels: int, overlap_fraction: float, figure_examples: int, seed: int
) -> LocalizationStudy:
    """Score every explanation of the localized set against its attack region.

    Pixel ties are broken by one random key map from ``default_rng([seed, 11])``.

    Args:
        sets: :func:`read_explained_sets`' arrays (``localized``, ``clean``, ``ifgsm``).
        max_superpixels: n_max (at most the LIME superpixels the explain stage kept).
        overlap_fraction: share of pixels whose top sets are compared, clean vs adversarial.
        figure_examples: examples in Fig. 3 and in the side-by-side figure.

    Raises:
        ParamError: ``max_superpixels`` exceeds the kept LIME superpixels.
    """
    loc, clean = sets["localized"], sets["clean"]
    top = loc["lime_top"].shape[1]
    if max_superpixels > top:
        raise ParamError(
            f"explain_eval.max_superpixels={max_superpixels} exceeds the {top} superpixels "
            "the explain stage kept (explain.lime_top)"
        )
    E, n_max = len(loc["rows"]), max_superpixels
    h, w = loc["region"].shape[1:]
    total = h * w
    tie = tie_break(seed, (h, w))
    regions = loc["region"].astype(bool)

    scored = table1(loc, n_max, tie)
    adv = scored.result
    ci = loc["clean_index"]
    clean_of = {k: v[ci] for k, v in clean.items() if len(v) == len(clean["rows"])}
    control = evaluate_examples(
        regions,
        clean_of["lime_segments"],
        clean_of["lime_top"],
        pixel_maps(clean_of),
        n_max,
        tie,
        ALL,
    )

    table, table4, ranked = scored.mean_rank, scored.mean_rank_with_random, scored.ranked
    ranks_j = rank_explainers(adv.jaccard[..., :3])
    ranks_h = rank_explainers(adv.hamming[..., :3])

    n = np.arange(1, n_max + 1)
    exp_j, exp_h = expected_random_curves(regions, adv.sizes, adv.n_valid)
    counts = (~np.isnan(adv.jaccard[..., 0])).sum(0)
    curves = {}
    for metric, values, expected in (
        ("jaccard", adv.jaccard, exp_j),
        ("hamming", adv.hamming, exp_h),
    ):
        mean = nanmean0(values)
        frame = pd.DataFrame({"n": n})
        for x, name in enumerate(ALL):
            frame[name] = mean[:, x]
        frame["random_expected"] = nanmean0(expected)
        frame["examples"] = counts
        curves[metric] = frame

    long = []
    for x, name in enumerate(ALL):
        frame = pd.DataFrame(
            {
                "example": np.repeat(np.arange(E), n_max),
                "row": np.repeat(loc["rows"], n_max),
                "n": np.tile(n, E),
                "pixels": adv.sizes.ravel(),
                "region_pixels": np.repeat(regions.reshape(E, -1).sum(1), n_max),
                "explainer": name,
                "jaccard": adv.jaccard[..., x].ravel(),
                "hamming": adv.hamming[..., x].ravel(),
                "rank_jaccard": ranks_j[..., x].ravel() if x < 3 else np.nan,
                "rank_hamming": ranks_h[..., x].ravel() if x < 3 else np.nan,
                "clean_jaccard": control.jaccard[..., x].ravel(),
            }
        )
        long.append(frame.dropna(subset=["jaccard"]))

    # How far each explanation moves between a clean image and its adversarial versions.
    k = max(1, round(overlap_fraction * total))
    set_maps = {name: {**pixel_maps(s), "lime": lime_maps(s)} for name, s in sets.items()}
    overlap: dict[str, dict[str, float]] = {}
    for name in ("localized", "ifgsm"):
        if name not in sets:
            continue
        s, maps, clean_maps = sets[name], set_maps[name], set_maps["clean"]
        overlap[name] = {
            ex: float(
                np.mean(
                    [
                        top_set_overlap(maps[ex][i], clean_maps[ex][s["clean_index"][i]], k, tie)
                        for i in range(len(s["rows"]))
                    ]
                )
            )
            if len(s["rows"])
            else float("nan")
            for ex in RANKED
        }

    mean_j = nanmean0(adv.jaccard.reshape(-1, len(ALL)))
    mean_h = nanmean0(adv.hamming.reshape(-1, len(ALL)))
    best_j = np.nanmax(adv.jaccard, axis=1)  # (E, X) best size per example
    ctrl_j = nanmean0(control.jaccard.reshape(-1, len(ALL)))
    metrics = {
        "examples": E,
        "explanations_ranked": ranked,
        "mean_rank": table,
        "mean_rank_with_random": table4,
        "paper_mean_rank": PAPER_TABLE1,
        "mean_jaccard": dict(zip(ALL, mean_j.tolist(), strict=True)),
        "mean_hamming": dict(zip(ALL, mean_h.tolist(), strict=True)),
        "mean_best_jaccard": dict(zip(ALL, nanmean0(best_j).tolist(), strict=True)),
        "random_expected_jaccard": float(np.nanmean(exp_j)),
        "clean_control_mean_jaccard": dict(zip(ALL, ctrl_j.tolist(), strict=True)),
        "explanation_overlap_with_clean": {"top_fraction": overlap_fraction, **overlap},
        "lime_positive_superpixels_mean": float(np.mean(adv.n_valid)),
        "lime_segments_mean": float(np.mean(loc["lime_num_segments"])),
        "region_fraction_mean": float(regions.reshape(E, -1).mean()),
    }
    log.info(
        "mean ranks (Jaccard): %s",
        ", ".join(f"{name} {v['jaccard']:.2f}" for name, v in table.items()),
    )

    figures = {
        "examples": figure3(loc, clean, adv, tie, figure_examples),
        "curves": curves_figure(
            n,
            {name: curves["jaccard"][name].to_numpy() for name in ALL},
            {name: curves["hamming"][name].to_numpy() for name in ALL},
            {name: nanmean0(control.jaccard[..., x]) for x, name in enumerate(RANKED)},
            {name: nanmean0(control.hamming[..., x]) for x, name in enumerate(RANKED)},
            (
                curves["jaccard"]["random_expected"].to_numpy(),
                curves["hamming"]["random_expected"].to_numpy(),
            ),
        ),
        "sets": sets_figure(sets, set_maps, RANKED, figure_examples),
    }
    return LocalizationStudy(
        curves["jaccard"], curves["hamming"], pd.concat(long), metrics, figures
    )
