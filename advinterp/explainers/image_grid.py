"""Image grids with captions, shared by the attack-to-explain figures (Jalwana et al. Figs. 3-8)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from advinterp.figures import show_chw


def to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) float array clipped to [0, 1] for imshow."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    return np.clip(arr.transpose(1, 2, 0), 0.0, 1.0)


def image_grid(
    cells: Sequence[Sequence[torch.Tensor | np.ndarray | None]],
    *,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    captions: Sequence[Sequence[str]] | None = None,
    title: str = "",
    cell_inches: float = 1.35,
    dpi: int = 100,
) -> Figure:
    """A grid of (C, H, W) images in [0, 1] (C = 3 or 1); ``None`` leaves a cell empty.

    Args:
        captions: one short line under each cell (e.g. a probability).
    """
    n_rows = len(cells)
    n_cols = max((len(r) for r in cells), default=1)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(cell_inches * n_cols + 0.6, cell_inches * n_rows + 0.6),
        dpi=dpi,
        squeeze=False,
    )
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            cell = cells[i][j] if j < len(cells[i]) else None
            if cell is None:
                ax.axis("off")
                continue
            cell_np = cell.detach().cpu().numpy() if isinstance(cell, torch.Tensor) else cell
            show_chw(ax, cell_np)
            if captions is not None and j < len(captions[i]) and captions[i][j]:
                ax.set_xlabel(captions[i][j], fontsize=6)
            if i == 0 and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=7)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig
