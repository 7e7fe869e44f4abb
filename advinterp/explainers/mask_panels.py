"""Drawing an image and its LAN mask in one panel (shared by the LAN figures).

Masks are drawn as the mean over colour channels, 0 (replaceable by noise) dark to
1 (important) bright.
"""

from __future__ import annotations

import numpy as np

from advinterp.figures import show_chw


def show_image(ax, image: np.ndarray, title: str | None = None) -> None:
    show_chw(ax, image)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=7)


def show_mask(ax, mask: np.ndarray, title: str | None = None) -> None:
    ax.imshow(mask.mean(0), cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=7)
