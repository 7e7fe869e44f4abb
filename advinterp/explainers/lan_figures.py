"""LAN masks beside their images (Nguyen et al. Figure 1 analogue)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from advinterp.explainers.mask_panels import show_image, show_mask


def mask_grid_figure(
    images: np.ndarray, masks: np.ndarray, titles: Sequence[str], dpi: int = 100
) -> Figure:
    """Figure 1 analogue: images (top row) and their LAN masks (bottom row).

    Shape:
        images, masks: (K, 3, H, W) in [0, 1]; titles: K strings.
    """
    k = len(images)
    fig, axes = plt.subplots(2, k, figsize=(1.2 * k, 2.7), dpi=dpi, squeeze=False)
    for j in range(k):
        show_image(axes[0, j], images[j], titles[j])
        show_mask(axes[1, j], masks[j])
    for r, row_name in enumerate(("image", "LAN mask")):
        axes[r, 0].text(
            -0.15,
            0.5,
            row_name,
            transform=axes[r, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=8,
        )
    fig.tight_layout()
    return fig
