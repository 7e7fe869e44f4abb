"""Stage ``a2e_explain``: attack-to-explain perturbations (Jalwana et al. Sec. 5.1, Figs. 2-5).

The experiment is :func:`advinterp.explainers.a2e_perturbations.explain_classes`.
"""

from __future__ import annotations

import logging

from advinterp.config.a2e import A2E
from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.config.a2e_second import A2ESecondConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.a2e_perturbation_figures import perturbation_figure, region_figure
from advinterp.explainers.a2e_perturbations import MODEL_KEYS, explain_classes
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.store import atomic_output, create_group, write_array, write_csv, write_json
from stages.stage import Curve, Keys, Stage, StageIO, figure, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.a2e_explain")

STAGE = Stage(
    name="a2e_explain",
    method=A2E,
    desc="Jalwana et al. Sec. 5.1, Algorithms 1-2 - distribution-level perturbations (seed + "
    "target-free samples, ξ-fused gradients, Adam moments, ±ρ sign test, l2 projection; Otsu "
    "refinement every N iterations) for the standard model and a second architecture "
    "(a2e_second); Fig. 3/4-style grids, ℘ curves and the cross-model table.",
    inputs={
        "dataset": "data/dataset.zarr",
        "model": "artifacts/train/model.pt",
        "second_model": "artifacts/a2e_second/model.pt",
    },
    outputs={
        "out": out("artifacts/a2e_explain/perturbations.zarr"),
        "metrics": metrics("artifacts/a2e_explain/metrics.json"),
        "curves": plot(
            "artifacts/a2e_explain/curves.csv",
            Curve(
                "Attack to explain, mean expected target probability ℘ per iteration "
                "(Jalwana et al. Alg. 1 line 22)",
                "iteration",
                ["standard", "second"],
            ),
        ),
        "figure": figure("artifacts/a2e_explain/perturbations.png"),
        "figure_regions": figure("artifacts/a2e_explain/regions.png"),
    },
    # a2e_second.batch_size: both models' test accuracy is measured on its batches
    configs=(A2EExplainConfig, Keys(A2ESecondConfig, ("batch_size",))),
    base=("seed", "device", "num_threads", "chunk_size"),
)


def main(io: StageIO) -> None:
    cfg = io.config(A2EExplainConfig)
    data = load_dataset(io.dataset)
    C = data.num_classes
    paths = {"standard": io.model, "second": io.second_model}
    models = {key: load_classifier(paths[key], io.device, num_classes=C) for key in MODEL_KEYS}
    batch_size = io.config(A2ESecondConfig).batch_size  # of the test-accuracy pass
    result = explain_classes(
        models,
        data.images,
        data.index,
        cfg,
        seed=io.base.seed,
        device=io.device,
        accuracy_batch_size=batch_size,
    )
    with atomic_output(io.out) as tmp:
        store = create_group(
            tmp,
            {
                "params": cfg.model_dump(mode="json"),
                "models": [
                    {"key": k, "arch": models[k].arch, "checkpoint": str(paths[k])}
                    for k in MODEL_KEYS
                ],
                "class_names": data.index.class_names,
                "runs": [r["run"] for r in result.runs],
                "region_boxes": [list(b) for b in result.boxes],
            },
        )
        for name, (arr, attrs) in result.arrays().items():
            dims = ("run", "channel", "y", "x") if arr.ndim == 4 else ("run",)
            write_array(store, name, arr, dims=dims, chunk_size=io.base.chunk_size, attrs=attrs)
    write_csv(io.curves, result.curves, float_format="%.5f")
    dpi = cfg.figure.dpi
    save_figure(perturbation_figure(result, data.index.class_names, dpi), io.figure, dpi)
    save_figure(region_figure(result, data.index.class_names, dpi), io.figure_regions, dpi)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
