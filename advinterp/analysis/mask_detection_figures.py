"""Figures of mask-classifier detection (Nguyen et al. Figure 3 analogue and the ROC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from advinterp.explainers.mask_panels import show_image, show_mask


def invariance_figure(
    examples: Sequence[Sequence[tuple[np.ndarray, np.ndarray, str, str]]], dpi: int = 100
) -> Figure:
    """Figure 3 analogue: per example, a benign image and its adversarial versions
    (image row: f1's class; mask row: f2's class on the mask).

    Args:
        examples: per example a list of (image (3,H,W), mask (3,H,W), image title,
            mask title), the benign image first.
    """
    cols = max(len(e) for e in examples)
    rows = 2 * len(examples)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), dpi=dpi, squeeze=False)
    for i, example in enumerate(examples):
        for j in range(cols):
            if j < len(example):
                image, mask, t_img, t_mask = example[j]
                show_image(axes[2 * i, j], image, t_img)
                show_mask(axes[2 * i + 1, j], mask, t_mask)
            else:
                axes[2 * i, j].set_axis_off()
                axes[2 * i + 1, j].set_axis_off()
    fig.tight_layout()
    return fig


def roc_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float | None]], dpi: int = 100
) -> Figure:
    """ROC curves of the detection score, one line per setting (label shows the AUC).

    Args:
        curves: setting name -> (fpr, tpr, auc); names starting "transfer" are dashed,
            "ifgsm" dotted.
    """
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=dpi)
    for name, (fpr, tpr, auc) in curves.items():
        if not len(fpr):
            continue
        style = "--" if name.startswith("transfer") else ":" if name.startswith("ifgsm") else "-"
        label = f"{name} (AUC {auc:.3f})" if auc is not None else name
        ax.plot(fpr, tpr, style, label=label, linewidth=1.2)
    ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8)
    ax.set_xlabel("false positive rate (benign flagged)")
    ax.set_ylabel("true positive rate (adversarial flagged)")
    ax.set_title("LAN mask detection: 1 - p_f2(f1's class)", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    fig.tight_layout()
    return fig
