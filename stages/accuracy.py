"""Stage ``accuracy``: Figure 4 of Gulshad et al., softmax vs SJE accuracy against eps.

Top-1 accuracy of the softmax classifier and of SJE on the clean and adversarial images
of the attacked test subset, per model, attack mode and eps
(:mod:`advinterp.analysis.accuracy_curves`): the long table, the Figure 4 curves per mode
for ``dvc plots``, the figure and headline metrics (layout in docs/artifacts.md).
"""

from __future__ import annotations

import logging

from advinterp.analysis.accuracy_curves import CURVE_COLUMNS, figure4_accuracy
from advinterp.config.accuracy import AccuracyConfig
from advinterp.config.attributes import ATTRIBUTES
from advinterp.data.adversarial import MODES
from advinterp.figures import save_figure
from advinterp.store import atomic_output, open_store, write_csv, write_json
from stages.stage import Curve, Stage, StageIO, figure, metrics, plot, run, table

log = logging.getLogger("advinterp.stages.accuracy")

STAGE = Stage(
    name="accuracy",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 4.1, Figure 4 - softmax vs SJE top-1 accuracy against eps on "
    "clean and adversarial images, without and with adversarial training, for untargeted and "
    "targeted IFGSM.",
    inputs={
        "features": "artifacts/adv_features/features.zarr",
        "sje": "artifacts/sje/sje.zarr",
    },
    outputs={
        "table": table("artifacts/accuracy/accuracy.csv"),
        "curves": plot(
            "artifacts/accuracy/curves",
            *(
                Curve(
                    f"Softmax vs SJE accuracy, {mode} IFGSM (Gulshad Fig. 4)",
                    "eps",
                    [c for c in CURVE_COLUMNS if c not in ("eps", "at_model")],
                    file=f"curves_{mode}.csv",
                )
                for mode in MODES
            ),
        ),
        "figure": figure("artifacts/accuracy/figure4.png"),
        "metrics": metrics("artifacts/accuracy/metrics.json"),
    },
    configs=(AccuracyConfig,),
    base=(),
)


def main(io: StageIO) -> None:
    cfg = io.config(AccuracyConfig)
    result = figure4_accuracy(
        open_store(io.features, {"labels": 1}),
        open_store(io.sje, {"labels": 1}),
        features_origin=str(io.features),
        sje_origin=str(io.sje),
        dpi=cfg.figure.dpi,
    )
    write_csv(io.table, result.table)
    with atomic_output(io.curves) as tmp:
        tmp.mkdir()
        for mode, c in result.curves.items():
            c.to_csv(tmp / f"curves_{mode}.csv", index=False)
    save_figure(result.figure, io.figure, cfg.figure.dpi)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
