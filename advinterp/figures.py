"""Writing matplotlib figures: atomically, at the configured dpi, and always closed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from advinterp.store import atomic_output


def show_chw(ax, image: np.ndarray) -> None:
    """Draw a (C, H, W) image in [0, 1] on ``ax``: RGB as it is, one channel in grey.

    imshow takes (H, W, 3) colour or (H, W) scalars (which it would colour-map), so a
    grey image is drawn from its only channel with a fixed black-to-white map.
    """
    arr = np.clip(np.asarray(image), 0.0, 1.0)
    if arr.shape[0] == 1:
        ax.imshow(arr[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.transpose(arr, (1, 2, 0)), interpolation="nearest")


def save_figure(fig: Figure, path: Path | str, dpi: int) -> None:
    """Write ``fig`` to ``path`` as PNG (temp sibling, renamed on success) and close it.

    Closing matters in long stages: pyplot keeps every open figure alive.
    """
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
