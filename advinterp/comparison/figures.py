"""The comparison's figures: every map of the same examples, the scores, the agreement.

Maps are drawn as each pixel's rank within its own map (1 = the map's most relevant
pixel, 0 = its least), one colour scale for all: the scores only use pixel order, and
a gradient, a mask and a box weight share no unit.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import rankdata

from advinterp.comparison.examples import GROUPS
from advinterp.comparison.registry import DELTA, METHODS, REFERENCES
from advinterp.comparison.study import Comparison
from advinterp.figures import show_chw

CMAP = plt.get_cmap("inferno", 8)  # 8 levels: enough to read ranks, and PNGs stay small
LABELS = {DELTA: "|δ|", **{m.name: m.label for m in METHODS}}


def rank_image(values: np.ndarray) -> np.ndarray:
    """Each pixel's rank within the map in [0, 1] (ties share their mean rank).

    Shape: (H, W) -> (H, W) float64; a constant map is all 0.5.
    """
    flat = np.asarray(values, np.float64).ravel()
    if flat.size < 2 or np.ptp(flat) == 0:
        return np.full(np.shape(values), 0.5)
    return ((rankdata(flat) - 1) / (flat.size - 1)).reshape(np.shape(values))


def figure_rows(comparison: Comparison, per_group: int) -> list[int]:
    """The first ``per_group`` examples of each group, in :data:`GROUPS` order."""
    groups = comparison.examples.group
    return [int(i) for g in GROUPS for i in np.flatnonzero(groups == g)[:per_group]]


def maps_figure(comparison: Comparison, per_group: int, class_names: list[str], dpi: int) -> Figure:
    """Rows: examples; columns: clean, adversarial, |δ| and every method's map.

    The attacked region of a localized example is outlined (cyan) on every map, the
    changed-evidence boxes on the clean image (green).
    """
    ex = comparison.examples
    rows = figure_rows(comparison, per_group)
    # the random map is noise by construction: its column would only add bytes
    cols = ["clean", "adversarial", DELTA, *(m for m in comparison.maps if m != "random")]
    fig, axes = plt.subplots(
        max(len(rows), 1),
        len(cols),
        figsize=(1.05 * len(cols) + 0.8, 1.1 * max(len(rows), 1) + 0.5),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for r, i in enumerate(rows):
        label = class_names[int(ex.label[i])]
        fooled = class_names[int(ex.adv_class[i])]
        for c, col in enumerate(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == "clean":
                show_chw(ax, ex.clean[i])
                if comparison.references["evidence"][i].any():
                    ax.contour(
                        comparison.references["evidence"][i], [0.5], colors="lime", linewidths=0.6
                    )
                ax.set_ylabel(f"{ex.group[i]}\n{label}\n→ {fooled}", fontsize=6)
                continue
            if col == "adversarial":
                show_chw(ax, ex.adversarial[i])
                continue
            values = comparison.delta[i] if col == DELTA else comparison.maps[col][i]
            image = ax.imshow(
                rank_image(values), cmap=CMAP, vmin=0, vmax=1, interpolation="nearest"
            )
            if ex.localized[i]:
                ax.contour(ex.region[i], [0.5], colors="cyan", linewidths=0.6)
    for c, col in enumerate(cols):
        axes[0, c].set_title(LABELS.get(col, col), fontsize=7)
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.6, aspect=30, pad=0.005)
        bar.set_label("pixel rank within its map", fontsize=6)
        bar.ax.tick_params(labelsize=5)
    fig.suptitle(
        "The same adversarial examples explained by every method "
        "(* class-level: one map per adversarial class)",
        fontsize=8,
    )
    return fig


def scores_figure(summary: pd.DataFrame) -> Figure:
    """Mean ± sd overlap per method for each reference, the random expectation dashed."""
    refs = [r for r in REFERENCES if (summary["reference"] == r).any()]
    fig, axes = plt.subplots(
        1, max(len(refs), 1), figsize=(3.4 * max(len(refs), 1), 2.8), squeeze=False
    )
    for ax, ref in zip(axes[0], refs, strict=False):
        part = summary[(summary["reference"] == ref) & (summary["group"] == "all")]
        x = np.arange(len(part))
        colours = ["tab:blue" if ok else "tab:gray" for ok in part["above_random"]]
        ax.bar(x, part["mean"], yerr=part["sd"], color=colours, capsize=2)
        ax.plot(x, part["random"], "k_", markersize=14, label="random (exact)")
        for xi, (_, r) in zip(x, part.iterrows(), strict=True):
            if r.above_prior:
                ax.text(xi, min(r["mean"] + r.sd + 0.03, 0.95), "★", ha="center", fontsize=8)
        ax.set_xticks(
            x, [LABELS.get(m, m) for m in part["method"]], rotation=60, ha="right", fontsize=6
        )
        ax.set_ylim(0, 1)
        ax.set_title(f"vs {REFERENCES[ref]}\n(n = {int(part['n'].max())})", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("overlap (share of top-|R| pixels in R)", fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.suptitle(
        "Blue: above random by more than 2 standard errors; bars: sd over examples", fontsize=7
    )
    fig.tight_layout()
    return fig


def agreement_figure(agreement: pd.DataFrame, k: int) -> Figure:
    """Method x method heatmaps: Spearman (random 0) and top-k Jaccard (random E[J])."""
    names = list(dict.fromkeys(agreement["a"]))
    labels = [LABELS.get(n, n) for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6), layout="constrained")
    specs = (
        ("spearman", "RdBu_r", -1.0, 1.0, "Spearman ρ (random: 0)"),
        (
            "jaccard",
            "viridis",
            0.0,
            1.0,
            f"top-{k} Jaccard (random: {agreement['jaccard_random'].iloc[0]:.3f})",
        ),
    )
    for ax, (col, cmap, lo, hi, title) in zip(axes, specs, strict=True):
        grid = agreement.pivot(index="a", columns="b", values=col).loc[names, names].to_numpy()
        im = ax.imshow(grid, cmap=cmap, vmin=lo, vmax=hi)
        for (r, c), v in np.ndenumerate(grid):
            if np.isfinite(v):
                dark = v < 0.6 if col == "jaccard" else abs(v) > 0.6  # text on dark cells: white
                colour = "w" if dark else "k"
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=9, color=colour)
        ax.set_xticks(range(len(names)), labels, rotation=50, ha="right", fontsize=11)
        ax.set_yticks(range(len(names)), labels, fontsize=11)
        ax.set_title(title, fontsize=13)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=9)
    fig.suptitle(
        "Do the methods point at the same pixels? (mean over the shared examples)", fontsize=13
    )
    return fig
