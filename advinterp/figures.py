"""Writing matplotlib figures: atomically, at the configured dpi, and always closed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from advinterp.store import atomic_output


def save_figure(fig: Figure, path: Path | str, dpi: int) -> None:
    """Write ``fig`` to ``path`` as PNG (temp sibling, renamed on success) and close it.

    Closing matters in long stages: pyplot keeps every open figure alive.
    """
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
