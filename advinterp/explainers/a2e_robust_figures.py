"""Figures of generation, inpainting and sketches with a robust model (Jalwana et al. Figs. 6-8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

from advinterp.explainers.image_grid import image_grid

if TYPE_CHECKING:  # types only: the stage imports (and depends on) its own experiment
    from advinterp.explainers.a2e_robust_tasks import RobustTasks


def _judge_confidence(rec: dict, name: str) -> str:
    # the independent judge (the second architecture): it took no part in the robust model
    return f"2nd {rec[f'{name}/second_confidence']:.2f}"


def generation_figure(result: RobustTasks, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 6 analogue: Gaussian seed, attack to explain, PGD; captions the independent
    judge's (second model's) p(target)."""
    task, eta = result.generation, result.metrics["generation"]["eta"]
    methods = ("seed", "a2e", "pgd")
    return image_grid(
        [[task.images[m][i] for m in methods] for i in range(len(task.records))],
        row_labels=[class_names[r["target"]] for r in task.records],
        col_labels=["Gaussian seed", "attack to explain", "PGD (Santurkar)"],
        captions=[[_judge_confidence(r, m) for m in methods] for r in task.records],
        title=f"Generation, robust model, η={eta:.3g} (Fig. 6); caption: second model's p(target)",
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
        title=f"Inpainting, Eq. 4, β={beta:g}, η={eta:.3g} (Fig. 7); caption: masked-region MSE",
        dpi=dpi,
    )


def sketch_figure(result: RobustTasks, class_names: Sequence[str], dpi: int) -> Figure:
    """Fig. 8 analogue: sketched image, crude sketch, attack to explain, PGD; captions the
    independent judge's (second model's) p(target)."""
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
            [""] + [_judge_confidence(r, m) for m in ("sketch", "a2e", "pgd")] for r in task.records
        ],
        title=f"Sketch manipulation, η={eta:.3g} (Fig. 8); caption: second model's p(target)",
        dpi=dpi,
    )
