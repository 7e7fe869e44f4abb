"""Stage ``explain_eval``: how well explainers recover localized attacks (Göpfert et al. Sec. 4).

Jaccard index (Eq. 2) and Hamming likeness (Eq. 3) of n = 1..20 superpixel explanations
against the attack region, mean ranks (Table 1), curves (Fig. 4), examples (Fig. 3), the
clean-image control and clean-vs-adversarial explanations side by side
(:mod:`advinterp.analysis.localization_study`).
"""

from __future__ import annotations

import logging

from advinterp.analysis.localization_study import localization_study, read_explained_sets
from advinterp.config.explain_eval import ExplainEvalConfig
from advinterp.config.localized import LOCALIZED
from advinterp.figures import save_figure
from advinterp.store import open_store, write_csv, write_json
from stages.stage import Curve, Stage, StageIO, figure, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.explain_eval")

CURVE_Y = ["saliency", "guided_backprop", "lime", "random", "random_expected"]
STAGE = Stage(
    name="explain_eval",
    method=LOCALIZED,
    desc="Göpfert et al. Sec. 4 - Jaccard index and Hamming likeness (Eqs. 2-3) of each "
    "explainer's n = 1..20 explanation against the attack region, mean ranks (Table 1), curves "
    "(Fig. 4), examples (Fig. 3) and clean-vs-adversarial explanations side by side.",
    inputs={"explanations": "artifacts/explain/explanations.zarr"},
    outputs={
        "metrics": metrics("artifacts/explain_eval/metrics.json"),
        "jaccard": plot(
            "artifacts/explain_eval/jaccard.csv",
            Curve(
                "Jaccard index of n-superpixel explanations vs attack region (Göpfert Fig. 4)",
                "n",
                CURVE_Y,
            ),
        ),
        "hamming": plot(
            "artifacts/explain_eval/hamming.csv",
            Curve(
                "Hamming likeness of n-superpixel explanations vs attack region (Göpfert Fig. 4)",
                "n",
                CURVE_Y,
            ),
        ),
        "per_example": out("artifacts/explain_eval/per_example.csv"),
        "figure_examples": figure("artifacts/explain_eval/figure3_examples.png"),
        "figure_curves": figure("artifacts/explain_eval/figure4_curves.png"),
        "figure_sets": figure("artifacts/explain_eval/explanations_side_by_side.png"),
    },
    configs=(ExplainEvalConfig,),
    base=("seed",),
)


def main(io: StageIO) -> None:
    cfg = io.config(ExplainEvalConfig)
    sets = read_explained_sets(open_store(io.explanations), io.explanations)
    study = localization_study(
        sets,
        max_superpixels=cfg.max_superpixels,
        overlap_fraction=cfg.overlap_fraction,
        figure_examples=cfg.figure_examples,
        seed=io.base.seed,
    )
    for path, frame in ((io.jaccard, study.jaccard), (io.hamming, study.hamming)):
        write_csv(path, frame, float_format="%.6g")
    write_csv(io.per_example, study.per_example, float_format="%.6g")
    write_json(io.metrics, study.metrics)
    for path, key in (
        (io.figure_examples, "examples"),
        (io.figure_curves, "curves"),
        (io.figure_sets, "sets"),
    ):
        save_figure(study.figures[key], path, cfg.figure.dpi)


if __name__ == "__main__":
    run(STAGE, main)
