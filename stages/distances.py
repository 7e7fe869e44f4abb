"""Stage ``distances``: attribute distances of Eqs. 8-15 and the Figure 5 histograms.

On the top-20% most-changed attributes of SJE's predictions: (a) clean vs adversarial
attributes against the distance of the two classes, (b) the same with AT-recovered
adversarial images, (c) adversarial attributes to the wrong vs the correct class,
(d) the same under adversarial training (:mod:`advinterp.analysis.distance_study`).
"""

from __future__ import annotations

import logging

from advinterp.analysis.distance_study import distance_study
from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.distances import DistancesConfig
from advinterp.figures import save_figure
from advinterp.store import open_store, write_csv, write_json
from stages.stage import Curve, Stage, StageIO, figure, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.distances")

STAGE = Stage(
    name="distances",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 4.2, Eqs. 8-15 / Figure 5 - Euclidean distances on the top 20% "
    "most-changed predicted attributes (clean vs adversarial, AT vs standard, adversarial to "
    "wrong vs correct class with and without AT), histograms per attack mode and the fraction "
    "closer to the wrong class at every eps.",
    inputs={"attack": "artifacts/attack/adversarial.zarr", "sje": "artifacts/sje/sje.zarr"},
    outputs={
        "figure_untargeted": figure("artifacts/distances/figure5_untargeted.png"),
        "figure_targeted": figure("artifacts/distances/figure5_targeted.png"),
        "metrics": metrics("artifacts/distances/metrics.json"),
        "table": out("artifacts/distances/distances.csv"),
        "histograms": plot(
            "artifacts/distances/histograms.csv",
            Curve(
                "Fig. 5(c) counts per distance bin, d1 = |Ẑ-φ(y)| (wrong class), "
                "d2 = |Ẑ-φ(y_n)| (true class)",
                "distance",
                ["untargeted_c_d1", "untargeted_c_d2", "targeted_c_d1", "targeted_c_d2"],
            ),
        ),
        "curve": plot(
            "artifacts/distances/closer_to_wrong.csv",
            Curve(
                "Fraction of fooled images whose attributes are closer to the wrong class "
                "(Fig. 5c/d)",
                "eps",
                ["untargeted_c", "targeted_c", "untargeted_d", "targeted_d"],
            ),
        ),
    },
    configs=(DistancesConfig,),
    base=("seed", "num_threads"),
)


def main(io: StageIO) -> None:
    cfg = io.config(DistancesConfig)
    result = distance_study(
        open_store(io.attack, {"rows": 1, "labels": 1}),
        open_store(io.sje, {"class_embeddings": 2, "rows": 1}),
        cfg,
    )
    for mode, fig in result.figures.items():
        save_figure(fig, getattr(io, f"figure_{mode}"), cfg.figure.dpi)
    write_csv(io.table, result.table)
    write_csv(io.histograms, result.histograms)
    write_csv(io.curve, result.curve)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
