"""Figure 5 of Gulshad et al.: histograms of the two distances of each panel (a)-(d)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from advinterp.analysis.distances import PANELS, DistancePair, histograms


def figure5(pairs: Mapping[str, DistancePair], title: str, bins: int = 20) -> Figure:
    """One histogram panel per entry of ``pairs`` (keys ``a``-``d``), d1 blue, d2 red.

    Panels share bin edges; each panel's legend gives the fraction with d1 < d2.
    """
    keys = [k for k in PANELS if k in pairs]
    fig = Figure(figsize=(3.2 * max(len(keys), 1), 2.8), dpi=100)
    edges, counts = histograms({k: pairs[k] for k in keys}, bins)
    centers = 0.5 * (edges[1:] + edges[:-1])
    width = edges[1] - edges[0]
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        d1_label, d2_label, what = PANELS[k]
        c1, c2 = counts[k]
        ax.bar(centers, c1, width=width, color="tab:blue", alpha=0.55, label=f"d1 {d1_label}")
        ax.bar(centers, c2, width=width, color="tab:red", alpha=0.55, label=f"d2 {d2_label}")
        p = pairs[k]
        frac = float(np.mean(p.d1 < p.d2)) if len(p.d1) else float("nan")
        ax.set_title(f"({k}) {what}\nn={len(p.d1)}, d1<d2: {frac:.0%}", fontsize=7)
        ax.set_xlabel("Euclidean distance (top-changed attributes)", fontsize=7)
        ax.set_ylabel("images", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
