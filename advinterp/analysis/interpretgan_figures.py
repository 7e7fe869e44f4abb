"""Figures of InterpretGAN's per-layer explanations (Zheng et al. Figs. 3/5 rows).

Each ``*_figure`` function returns a matplotlib Figure; the stage saves it
(:func:`advinterp.figures.save_figure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from advinterp.figures import show_chw

INPUTS: tuple[str, ...] = ("natural", "adversarial")
"""The rows drawn per example, in the order of the explanation arrays' ``input`` axis."""

BASELINE_TITLES = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated\ngradients",
    "occlusion": "Occlusion",
}


@dataclass(frozen=True)
class ExplanationRow:
    """One row of Figure 3/5: an input, its per-layer explanations, pixel attributions.

    Shape:
        image: (C, H, W) in [0, 1]; explanations: (L, C, H, W) in [0, 1] (C = 3 or 1);
        baselines: name -> (H, W) float.
    """

    label: str
    image: np.ndarray
    image_title: str
    explanations: np.ndarray
    explanation_titles: Sequence[str]
    baselines: Mapping[str, np.ndarray]


def _image(ax, image: np.ndarray, title: str) -> None:
    show_chw(ax, image)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=6)


def _heat(ax, heat: np.ndarray, signed: bool) -> None:
    if signed:
        lim = float(np.abs(heat).max()) or 1.0
        ax.imshow(heat, cmap="coolwarm", vmin=-lim, vmax=lim, interpolation="nearest")
    else:
        ax.imshow(heat, cmap="inferno", vmin=0.0, vmax=float(heat.max()) or 1.0)
    ax.set_xticks([])
    ax.set_yticks([])


def explanation_rows_figure(
    rows: Sequence[ExplanationRow], layers: Sequence[str], title: str, dpi: int = 100
) -> Figure:
    """Figures 3/5: per row the input, one explanation per layer, then the baselines.

    Natural and adversarial rows alternate in the paper; pass them in that order.
    Titles above explanations name f's class on them, so the drift of an adversarial
    example's explanations towards the wrong class reads left to right.
    """
    if not rows:
        raise ValueError("no rows to draw")
    names = list(rows[0].baselines)
    cols = 1 + len(layers) + len(names)
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(0.95 * cols, 1.05 * len(rows) + 0.4), dpi=dpi, squeeze=False
    )
    for r, row in enumerate(rows):
        _image(axes[r, 0], row.image, row.image_title)
        axes[r, 0].set_ylabel(row.label, fontsize=7)
        for j, layer in enumerate(layers):
            head = f"{layer}\n" if r == 0 else ""
            _image(axes[r, 1 + j], row.explanations[j], head + row.explanation_titles[j])
        for k, name in enumerate(names):
            ax = axes[r, 1 + len(layers) + k]
            _heat(ax, row.baselines[name], signed=name == "occlusion")
            if r == 0:
                ax.set_title(BASELINE_TITLES.get(name, name), fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def explanation_rows(
    images: np.ndarray,
    labels: np.ndarray,
    arrays: Mapping[str, np.ndarray],
    methods: Sequence[str],
) -> list[ExplanationRow]:
    """Figure rows of one model: for each example its natural row, then its adversarial
    row; the input's title gives y and f's class, each explanation's title f's class.

    Shape:
        images: (n, 3, H, W) in [0, 1]; labels: (n,) int. ``arrays`` holds
        ``adversarial`` (n, 3, H, W), ``predictions`` (n, 2), ``explanations``
        (n, 2, L, 3, H, W), ``explanation_classes`` (n, 2, L) and ``baselines``
        (n, 2, B, H, W), input axis in :data:`INPUTS` order; ``methods`` names the B maps.
    """
    rows = []
    for i in range(len(images)):
        for j, inp in enumerate(INPUTS):
            image = images[i] if inp == "natural" else arrays["adversarial"][i]
            pred = int(arrays["predictions"][i, j])
            title = f"y={int(labels[i])}, f={pred}" if inp == "natural" else f"f={pred}"
            rows.append(
                ExplanationRow(
                    label=inp,
                    image=image,
                    image_title=title,
                    explanations=arrays["explanations"][i, j],
                    explanation_titles=[f"{int(c)}" for c in arrays["explanation_classes"][i, j]],
                    baselines={
                        name: arrays["baselines"][i, j, b] for b, name in enumerate(methods)
                    },
                )
            )
    return rows


def model_explanations_figure(
    images: np.ndarray,
    labels: np.ndarray,
    arrays: Mapping[str, np.ndarray],
    layers: Sequence[str],
    methods: Sequence[str],
    *,
    model: str,
    eps: float,
    steps: int,
    dpi: int = 100,
) -> Figure:
    """Figures 3/5 for one model: :func:`explanation_rows` drawn by
    :func:`explanation_rows_figure`, titled with the model and the PGD attack."""
    return explanation_rows_figure(
        explanation_rows(images, labels, arrays, methods),
        layers,
        f"InterpretGAN, {model} model: natural and PGD-{steps} (eps {eps}) rows",
        dpi=dpi,
    )
