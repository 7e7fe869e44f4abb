"""Stage ``igan_explain``: InterpretGAN explanations of natural and PGD adversarial
images, layer by layer, beside captum's saliency, integrated gradients and occlusion
(Zheng et al. Figures 3 and 5), for the natural and the robust pooling CNN.

Writes a zarr store of every array drawn and one figure per model: rows alternate
natural / adversarial; above each explanation, f's class on it.
"""

from __future__ import annotations

import logging

from advinterp.analysis.interpretgan_explanations import explain_examples, write_explanations
from advinterp.analysis.interpretgan_figures import model_explanations_figure
from advinterp.config.igan import IGAN
from advinterp.config.igan_explain import IganExplainConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.interpretgan_training import MODELS, load_igan_models
from advinterp.figures import save_figure
from advinterp.store import atomic_output
from stages.stage import Stage, StageIO, figure, out, run

log = logging.getLogger("advinterp.stages.igan_explain")

STAGE = Stage(
    name="igan_explain",
    method=IGAN,
    desc="InterpretGAN explanations of natural and PGD-40 images at every layer of the "
    "natural and the robust pooling CNN, beside captum's saliency, integrated gradients and "
    "occlusion (Zheng et al. Figures 3 and 5).",
    inputs={"dataset": "data/dataset.zarr", "models": "artifacts/igan_train/models"},
    outputs={
        "out": out("artifacts/igan_explain/explanations.zarr"),
        "figure_natural": figure("artifacts/igan_explain/natural.png"),
        "figure_robust": figure("artifacts/igan_explain/robust.png"),
    },
    configs=(IganExplainConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(IganExplainConfig)
    models = load_igan_models(io.models, io.device)
    data = load_dataset(io.dataset)
    found = explain_examples(models, data, cfg, seed=io.base.seed, device=io.device)
    with atomic_output(io.out) as tmp:
        write_explanations(tmp, found, params=cfg.model_dump(mode="json"))
    for kind, path in (("natural", io.figure_natural), ("robust", io.figure_robust)):
        fig = model_explanations_figure(
            found.images,
            found.labels,
            found.results[kind],
            found.layers,
            found.methods,
            model=kind,
            eps=cfg.eps,
            steps=cfg.steps,
            dpi=cfg.figure.dpi,
        )
        save_figure(fig, path, cfg.figure.dpi)
    log.info("explanations of %d examples for %s -> %s", len(found.rows), ", ".join(MODELS), io.out)


if __name__ == "__main__":
    run(STAGE, main)
