"""Figures 6-7 of Gulshad et al.: grounded attributes on clean and adversarial images.

Each example is a pair of panels side by side (clean | adversarial, or adversarial |
adversarial under adversarial training). Under each image its selected attributes are
listed ranked by importance (the Eq. 16/17 margin); a grounded attribute is drawn as a
box on the image and listed in that box's colour, an attribute that could not be
grounded is listed in grey. Functions return a matplotlib ``Figure``; the stage saves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

GREY = "#9a9a9a"
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#469990",
    "#9a6324",
)


def pretty_attribute(name: str) -> str:
    """``wing_color::blue`` -> ``blue wing``; CUB's ``has_wing_color::blue`` likewise.

    Names without ``::`` are returned with underscores as spaces.
    """
    if "::" not in name:
        return name.replace("_", " ")
    group, value = name.split("::", 1)
    part = group.removeprefix("has_").split("_")[0]
    return f"{value.replace('_', ' ')} {part}"


@dataclass(frozen=True)
class GroundedPanel:
    """One image with its ranked attributes and where they were grounded.

    Shape:
        image: (3, H, W) float in [0, 1].
        attributes: k names, most important first; importance: (k,).
        boxes: (k, 4) xyxy fractions of width/height, NaN rows where not grounded.
    """

    image: np.ndarray
    title: str
    attributes: Sequence[str]
    importance: np.ndarray
    boxes: np.ndarray

    @property
    def grounded(self) -> np.ndarray:
        return np.asarray(~np.isnan(np.asarray(self.boxes, np.float64)).any(axis=1), bool)


def _draw(ax_img, ax_txt, panel: GroundedPanel, max_listed: int) -> None:
    img = np.clip(np.transpose(np.asarray(panel.image, np.float32), (1, 2, 0)), 0, 1)
    h, w = img.shape[:2]
    ax_img.imshow(img, extent=(0, w, h, 0), interpolation="nearest")
    ax_img.set_title(panel.title, fontsize=7)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    colors: dict[int, str] = {}
    grounded = panel.grounded
    shown = min(len(panel.attributes), max_listed)
    for i in range(shown):
        if not grounded[i]:
            continue
        color = PALETTE[len(colors) % len(PALETTE)]
        colors[i] = color
        x0, y0, x1, y1 = np.asarray(panel.boxes[i], np.float64) * [w, h, w, h]
        ax_img.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=color))
        ax_img.text(
            x0,
            y0 - 0.5,
            pretty_attribute(panel.attributes[i]),
            fontsize=5,
            color="white",
            va="bottom",
            bbox={"facecolor": color, "edgecolor": "none", "pad": 0.5, "alpha": 0.85},
        )
    ax_txt.axis("off")
    for i in range(shown):
        ax_txt.text(
            0.0,
            1.0 - (i + 0.5) / max(shown, 1),
            f"{i + 1}. {pretty_attribute(panel.attributes[i])}  ({panel.importance[i]:+.2f})",
            color=colors.get(i, GREY),
            fontsize=7,
            fontweight="bold" if i in colors else "normal",
            va="center",
            transform=ax_txt.transAxes,
        )


def grounding_figure(
    examples: Sequence[tuple[GroundedPanel, GroundedPanel]],
    title: str,
    max_listed: int = 8,
) -> Figure:
    """Figure 6/7 style grid: one row per example, two panels (left, right) per row.

    Attributes beyond ``max_listed`` are counted in the metrics but not listed.
    """
    n = max(len(examples), 1)
    fig = Figure(figsize=(2.6 * 2 * min(n, 3), 4.4 * -(-n // 3)), dpi=100)
    cols = min(n, 3)
    rows = -(-n // 3)
    grid = fig.add_gridspec(2 * rows, 2 * cols, height_ratios=[3, 2] * rows, hspace=0.25)
    for e, (left, right) in enumerate(examples):
        r, c = divmod(e, cols)
        for k, panel in enumerate((left, right)):
            _draw(
                fig.add_subplot(grid[2 * r, 2 * c + k]),
                fig.add_subplot(grid[2 * r + 1, 2 * c + k]),
                panel,
                max_listed,
            )
    if not examples:
        ax = fig.add_subplot(grid[0, 0])
        ax.axis("off")
        ax.text(0.5, 0.5, "no eligible images", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    return fig
