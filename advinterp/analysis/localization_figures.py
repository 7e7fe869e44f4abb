"""Figures of Göpfert et al.: explanation examples (Fig. 3) and localisation curves (Fig. 4).

Pure rendering: arrays in, a matplotlib ``Figure`` out (the stage saves it with
:func:`advinterp.figures.save_figure`). :func:`figure3` and :func:`sets_figure` choose
what to show from an explanation set; the ``*_figure`` functions draw given panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from advinterp.analysis.localization import (
    LocalizationResult,
    pixel_maps,
    superpixel_unions,
    top_pixel_masks,
)

LABELS = {
    "saliency": "classic saliency",
    "guided_backprop": "guided backprop",
    "lime": "LIME",
    "random": "random",
}
COLORS = {"saliency": "C0", "guided_backprop": "C1", "lime": "C2", "random": "0.5"}


def _hwc(image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(image).transpose(1, 2, 0), 0.0, 1.0)


def normalise(m: np.ndarray) -> np.ndarray:
    """``m`` divided by its maximum when that is positive (heat maps shown in [0, 1])."""
    top = float(np.max(m)) if m.size else 0.0
    return m / top if top > 0 else m


def examples_figure(
    clean: Sequence[np.ndarray],
    adversarial: Sequence[np.ndarray],
    regions: Sequence[np.ndarray],
    masks: Sequence[Mapping[str, np.ndarray]],
    titles: Sequence[str],
    scores: Sequence[Mapping[str, float]],
) -> Figure:
    """Figure 3: per example, images, the ground-truth region and each explainer's pixels.

    Every explainer's mask holds the same number of pixels (white = in the explanation).

    Shape:
        clean, adversarial: (3, H, W) in [0, 1]; regions and masks values: (H, W) bool.
    """
    names = list(masks[0]) if masks else []
    cols = 4 + len(names)
    fig, axes = plt.subplots(
        len(clean), cols, figsize=(1.6 * cols, 1.75 * len(clean)), squeeze=False
    )
    for r in range(len(clean)):
        diff = np.abs(adversarial[r] - clean[r]).sum(0)
        panels = [
            (_hwc(clean[r]), "clean", None),
            (_hwc(adversarial[r]), "adversarial", None),
            (diff / max(float(diff.max()), 1e-12), "|difference|", "gray"),
            (regions[r], "ground truth C", "gray"),
        ]
        for name in names:
            panels.append((masks[r][name], f"{LABELS[name]}\nJ={scores[r][name]:.2f}", "gray"))
        for c, (img, title, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(
                img,
                cmap=cmap,
                vmin=0 if cmap else None,
                vmax=1 if cmap else None,
                interpolation="nearest",
            )
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(titles[r], fontsize=7)
    fig.tight_layout()
    return fig


def curves_figure(
    n: np.ndarray,
    jaccard: Mapping[str, np.ndarray],
    hamming: Mapping[str, np.ndarray],
    control_jaccard: Mapping[str, np.ndarray] | None = None,
    control_hamming: Mapping[str, np.ndarray] | None = None,
    expected_random: tuple[np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Figure 4: mean Jaccard index and Hamming likeness against explanation size n.

    Solid: explanations of the localized adversarial examples; dashed: the same
    explainers on the clean source images (same region); dotted: the analytic random
    expectation.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, values, control, metric, k in (
        (axes[0], jaccard, control_jaccard, "Jaccard index (Eq. 2)", 0),
        (axes[1], hamming, control_hamming, "Hamming likeness (Eq. 3)", 1),
    ):
        for name, v in values.items():
            ax.plot(n, v, color=COLORS[name], label=LABELS[name], marker=".")
        for name, v in (control or {}).items():
            ax.plot(
                n,
                v,
                color=COLORS[name],
                linestyle="--",
                linewidth=1,
                label=f"{LABELS[name]} (clean image)",
            )
        if expected_random is not None:
            ax.plot(
                n,
                expected_random[k],
                color="k",
                linestyle=":",
                linewidth=1,
                label="random (expected)",
            )
        ax.set_xlabel("explanation size n (LIME superpixels)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig


def side_by_side_figure(
    rows: Sequence[Sequence[tuple[str, np.ndarray, Mapping[str, np.ndarray]]]],
    row_titles: Sequence[str],
) -> Figure:
    """Clean, full-image adversarial and localized adversarial explanations side by side.

    ``rows[r]`` is a list of (set name, image (3, H, W), explainer -> (H, W) map in
    [0, 1]) entries; each entry becomes one image column plus one column per explainer.
    """
    width = max(len(r) for r in rows) if rows else 1
    per = 1 + max((len(e[2]) for r in rows for e in r), default=0)
    fig, axes = plt.subplots(
        len(rows), width * per, figsize=(1.1 * width * per, 1.25 * len(rows)), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for r, entries in enumerate(rows):
        for e, (name, image, maps) in enumerate(entries):
            c = e * per
            axes[r, c].imshow(_hwc(image), interpolation="nearest")
            axes[r, c].set_title(name, fontsize=7)
            for k, (ex, m) in enumerate(maps.items()):
                axes[r, c + 1 + k].imshow(
                    m, cmap="inferno", vmin=0, vmax=1, interpolation="nearest"
                )
                axes[r, c + 1 + k].set_title(LABELS.get(ex, ex), fontsize=7)
        axes[r, 0].axis("on")
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(row_titles[r], fontsize=7)
    fig.tight_layout()
    return fig


def figure3(
    localized: Mapping[str, np.ndarray],
    clean: Mapping[str, np.ndarray],
    result: LocalizationResult,
    tie_break: np.ndarray,
    n_examples: int,
) -> Figure:
    """Figure 3 from an explained localized set: examples spread evenly over the set, each
    at the size n where LIME's Jaccard index is best, every explainer with that many pixels.

    Args:
        localized, clean: explanation sets (``images``, ``region``, ``rows``,
            ``clean_index``, ``lime_*``, maps); ``result`` scores ``localized`` with the
            explainers in the order saliency, guided backprop, LIME, random.
    """
    E = len(localized["rows"])
    picks = np.unique(np.linspace(0, E - 1, min(n_examples, E)).round().astype(int))
    regions = localized["region"].astype(bool)
    maps = pixel_maps(localized)
    masks, scores, titles, cleans = [], [], [], []
    for e in picks:
        i = int(np.nanargmax(result.jaccard[e, :, 2])) if result.n_valid[e] else 0
        ids = [int(v) for v in localized["lime_top"][e] if v >= 0]
        size = int(result.sizes[e, i])
        m = {
            name: top_pixel_masks(maps[name][e], [size], tie_break)[0]
            for name in ("saliency", "guided_backprop")
        }
        m["lime"] = superpixel_unions(localized["lime_segments"][e], ids, i + 1)[i]
        m["random"] = top_pixel_masks(localized["random"][e], [size], tie_break)[0]
        masks.append(m)
        scores.append({name: float(result.jaccard[e, i, x]) for x, name in enumerate(result.names)})
        titles.append(f"row {localized['rows'][e]}, n={i + 1}")
        cleans.append(clean["images"][localized["clean_index"][e]])
    return examples_figure(
        cleans,
        [localized["images"][e] for e in picks],
        [regions[e] for e in picks],
        masks,
        titles,
        scores,
    )


def sets_figure(
    sets: Mapping[str, Mapping[str, np.ndarray]],
    maps: Mapping[str, Mapping[str, np.ndarray]],
    names: Sequence[str],
    n_examples: int,
) -> Figure:
    """Clean | full-image IFGSM | localized explanations of the same source images.

    One row per attacked clean image (its largest attacked region), those with an IFGSM
    example first, at most ``n_examples``; each map normalised to its maximum.

    Args:
        sets: ``clean``, ``localized`` and optionally ``ifgsm`` explanation sets.
        maps: set -> explainer -> (E, H, W) relevance maps; ``names`` are shown.
    """
    clean, loc = sets["clean"], sets["localized"]
    loc_by_clean: dict[int, int] = {}
    for i, c in enumerate(loc["clean_index"]):
        loc_by_clean.setdefault(int(c), i)  # the largest attacked region of that image
    ifgsm_by_clean = (
        {int(c): i for i, c in enumerate(sets["ifgsm"]["clean_index"])} if "ifgsm" in sets else {}
    )

    def entry(label: str, name: str, j: int) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
        return label, sets[name]["images"][j], {x: normalise(maps[name][x][j]) for x in names}

    rows, titles = [], []
    order = sorted(loc_by_clean, key=lambda c: (c not in ifgsm_by_clean, c))
    for c in order[:n_examples]:
        entries = [entry("clean", "clean", c)]
        if c in ifgsm_by_clean:
            entries.append(entry("full-image IFGSM", "ifgsm", ifgsm_by_clean[c]))
        entries.append(entry("localized", "localized", loc_by_clean[c]))
        rows.append(entries)
        titles.append(f"row {clean['rows'][c]}")
    return side_by_side_figure(rows, titles)
