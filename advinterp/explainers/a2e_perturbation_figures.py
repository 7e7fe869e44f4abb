"""Figures of attack-to-explain's class perturbations (Jalwana et al. Figs. 3-4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import torch
from matplotlib.figure import Figure

from advinterp.attacks.attack_to_explain import visualise_perturbation
from advinterp.explainers.image_grid import image_grid

if TYPE_CHECKING:  # types only: the stage imports (and depends on) its own experiment
    from advinterp.explainers.a2e_perturbations import ClassPerturbations


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
