"""Stage ``ground``: ground the attributes that change most (Eqs. 16-17) in detector boxes.

For images correct when clean and wrong when perturbed (untargeted, targeted) and for
images that adversarial training recovers (AT), select the top-k attributes of SJE's
predictions by Eq. 16 (clean / AT) or Eq. 17 (adversarial), match them with the
attribute detector's boxes, draw Figures 6-7 and score the grounding against the
ground-truth part boxes (:func:`advinterp.grounding.experiment.ground_attributes`).
"""

from __future__ import annotations

import logging

from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.ground import GroundConfig
from advinterp.data.artifact import load_dataset
from advinterp.figures import save_figure
from advinterp.grounding.experiment import ground_attributes
from advinterp.store import open_store, write_csv, write_json
from stages.stage import Stage, StageIO, figure, metrics, out, run

log = logging.getLogger("advinterp.stages.ground")

STAGE = Stage(
    name="ground",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 4.3 - for images correct when clean and fooled when perturbed "
    "(and AT-recovered ones) select the top-k attributes by Eq. 16 (clean/AT) and Eq. 17 "
    "(adversarial), ground them in detector boxes (Figures 6-7) and score grounding "
    "precision/recall against part boxes at IoU 0.5.",
    inputs={
        "dataset": "data/dataset.zarr",
        "attack": "artifacts/attack/adversarial.zarr",
        "sje": "artifacts/sje/sje.zarr",
        "detections": "artifacts/detect/detections.zarr",
    },
    outputs={
        "figure_untargeted": figure("artifacts/ground/figure6_untargeted.png"),
        "figure_targeted": figure("artifacts/ground/figure6_targeted.png"),
        "figure_at": figure("artifacts/ground/figure6_at.png"),
        "metrics": metrics("artifacts/ground/metrics.json"),
        "table": out("artifacts/ground/grounding.csv"),
    },
    configs=(GroundConfig,),
    base=("seed", "num_threads"),
)


def main(io: StageIO) -> None:
    cfg = io.config(GroundConfig)
    data = load_dataset(io.dataset)
    result = ground_attributes(
        data.images,
        data.index,
        open_store(io.attack, {"rows": 1, "labels": 1}),
        open_store(io.sje, {"class_embeddings": 2}),
        open_store(io.detections, {"rows": 1}),
        cfg,
    )
    for case, fig in result.figures.items():
        save_figure(fig, getattr(io, f"figure_{case}"), cfg.figure.dpi)
    write_csv(io.table, result.table)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
