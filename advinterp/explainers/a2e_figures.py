"""Figure grids for attack-to-explain (Jalwana et al. Figs. 3-8): images with captions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from advinterp.attacks.attack_to_explain import visualise_perturbation

if TYPE_CHECKING:  # types only: each stage imports (and depends on) its own experiment
    from advinterp.explainers.a2e_perturbations import ClassPerturbations
    from advinterp.explainers.a2e_robust_tasks import RobustTasks


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
    """A grid of (3, H, W) images in [0, 1]; ``None`` leaves a cell empty.

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
            ax.imshow(to_hwc(cell), interpolation="nearest")
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


def perturbation_figure(result: ClassPerturbations, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 3/5 analogue: rows = targets; an example of the class, then each model x seed."""
    runs = result.runs
    keys = list(dict.fromkeys(r["model"] for r in runs))  # MODEL_KEYS, in run order
    seeds = range(1 + max(r["seed"] for r in runs))
    cols = ["target example"] + [f"{key} s{k}" for key in keys for k in seeds]
    cells, caps, labels = [], [], []
    for t, example in result.examples.items():
        row: list[torch.Tensor | None] = [example]
        cap = [""]
        for key in keys:
            for k in seeds:
                i = next(
                    i
                    for i, r in enumerate(runs)
                    if r["model"] == key and r["target"] == t and r["seed"] == k and r["region"] < 0
                )
                row.append(visualise_perturbation(result.results[i].perturbation.cpu()))
                cap.append(f"℘={runs[i]['target_probability']:.2f}")
        cells.append(row)
        caps.append(cap)
        labels.append(class_names[t])
    return image_grid(
        cells,
        row_labels=labels,
        col_labels=cols,
        captions=caps,
        dpi=dpi,
        title="Attack to explain: perturbations per target (Jalwana et al. Fig. 3)",
    )


def region_figure(result: ClassPerturbations, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 4 analogue: top row seeds (with the patch), bottom row perturbations; the first
    column is the unpatched reference run."""
    runs, results, seeds = result.runs, result.results, result.seed_images
    idx = [i for i, r in enumerate(runs) if r["region"] >= 0]
    ref_i = result.reference
    top = [seeds[ref_i]] + [seeds[i] for i in idx]
    bottom = [visualise_perturbation(results[ref_i].perturbation.cpu())] + [
        visualise_perturbation(results[i].perturbation.cpu()) for i in idx
    ]
    caps = [
        [""] * len(top),
        ["no patch"] + [f"near={runs[i]['energy_near_region']:.2f}" for i in idx],
    ]
    cols = ["no patch"] + [f"region {runs[i]['region']}" for i in idx]
    return image_grid(
        [top, bottom],
        row_labels=["seed", "perturbation"],
        col_labels=cols,
        captions=caps,
        dpi=dpi,
        title=f"Region-specific semantics, {class_names[result.region_target]} (Fig. 4)",
    )


def _standard_confidence(rec: dict, name: str) -> str:
    return f"std {rec[f'{name}/standard_confidence']:.2f}"


def generation_figure(result: RobustTasks, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 6 analogue: Gaussian seed, attack to explain, PGD; captions the standard
    model's p(target)."""
    task, eta = result.generation, result.metrics["generation"]["eta"]
    methods = ("seed", "a2e", "pgd")
    return image_grid(
        [[task.images[m][i] for m in methods] for i in range(len(task.records))],
        row_labels=[class_names[r["target"]] for r in task.records],
        col_labels=["Gaussian seed", "attack to explain", "PGD (Santurkar)"],
        captions=[[_standard_confidence(r, m) for m in methods] for r in task.records],
        title=f"Generation, robust model, η={eta:g} (Fig. 6); caption: standard model's p(target)",
        dpi=dpi,
    )


def inpainting_figure(result: RobustTasks, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 7 analogue: original, corrupted seed, attack to explain, PGD; captions the
    masked-region MSE."""
    task, summary = result.inpainting, result.metrics["inpainting"]
    beta, eta = summary["beta"], summary["eta"]
    return image_grid(
        [
            [task.images[m][i] for m in ("original", "corrupted", "a2e", "pgd")]
            for i in range(len(task.records))
        ],
        row_labels=[class_names[r["label"]] for r in task.records],
        col_labels=["original", "corrupted seed", "attack to explain", "PGD (Santurkar)"],
        captions=[
            [""] + [f"mse {r[f'{m}/masked_mse']:.3f}" for m in ("corrupted", "a2e", "pgd")]
            for r in task.records
        ],
        title=f"Inpainting, Eq. 4, β={beta:g}, η={eta:g} (Fig. 7); caption: masked-region MSE",
        dpi=dpi,
    )


def sketch_figure(result: RobustTasks, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 8 analogue: sketched image, crude sketch, attack to explain, PGD; captions the
    standard model's p(target)."""
    task, eta = result.sketch, result.metrics["sketch"]["eta"]
    return image_grid(
        [
            [task.images[m][i] for m in ("reference", "sketch", "a2e", "pgd")]
            for i in range(len(task.records))
        ],
        row_labels=[class_names[r["target"]] for r in task.records],
        col_labels=[
            "sketched image",
            "crude sketch (seed)",
            "attack to explain",
            "PGD (Santurkar)",
        ],
        captions=[
            [""] + [_standard_confidence(r, m) for m in ("sketch", "a2e", "pgd")]
            for r in task.records
        ],
        title=f"Sketch manipulation, η={eta:g} (Fig. 8); caption: standard model's p(target)",
        dpi=dpi,
    )
