"""Stage ``a2e_robust``: generation, inpainting and sketch manipulation with a robust model.

Jalwana et al. Sec. 5.2 (Figs. 6-8), each beside Santurkar et al.'s l2 PGD; the
experiment is :func:`advinterp.explainers.a2e_robust_tasks.robust_tasks`.
"""

from __future__ import annotations

import logging

from advinterp.config.a2e import A2E
from advinterp.config.a2e_robust import A2ERobustConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.a2e_robust_figures import (
    generation_figure,
    inpainting_figure,
    sketch_figure,
)
from advinterp.explainers.a2e_robust_tasks import (
    INDEPENDENT,
    check_independent,
    load_robust,
    robust_tasks,
    took_part,
)
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.store import atomic_output, create_group, write_array, write_json
from stages.stage import Stage, StageIO, figure, metrics, out, run

log = logging.getLogger("advinterp.stages.a2e_robust")

STAGE = Stage(
    name="a2e_robust",
    method=A2E,
    desc="Jalwana et al. Sec. 5.2, Figs. 6-8 - image generation, inpainting (Eq. 4, β=10) and "
    "sketch manipulation with the adversarially trained model and class-conditional Gaussian "
    "samples, each beside Santurkar et al.'s targeted l2 PGD at the same budget (eta stated at "
    "224 px, scaled to equal rms); judged by the independently trained second model (target "
    "confidence), beside the robust model and its parent, and masked-region MSE.",
    inputs={
        "dataset": "data/dataset.zarr",
        "model": "artifacts/train/model.pt",
        "second_model": "artifacts/a2e_second/model.pt",
        "robust": "artifacts/adv_train/models",
    },
    outputs={
        "out": out("artifacts/a2e_robust/images.zarr"),
        "metrics": metrics("artifacts/a2e_robust/metrics.json"),
        "figure_generation": figure("artifacts/a2e_robust/generation.png"),
        "figure_inpainting": figure("artifacts/a2e_robust/inpainting.png"),
        "figure_sketch": figure("artifacts/a2e_robust/sketch.png"),
    },
    configs=(A2ERobustConfig,),
    base=("seed", "device", "num_threads", "chunk_size"),
)


def main(io: StageIO) -> None:
    cfg = io.config(A2ERobustConfig)
    data = load_dataset(io.dataset)
    C = data.num_classes
    robust, robust_path, robust_eps = load_robust(io.robust, cfg.robust_model, io.device, C)
    log.info("robust model %s (train eps %s)", robust_path, robust_eps)
    # train's model is the robust model's parent (adv_train fine-tunes it): only a model
    # that took no part in producing the robust one may judge it
    check_independent(io.second_model, robust_path, f"a2e_robust's {INDEPENDENT} judge")
    paths = {"second": io.second_model, "robust": robust_path, "parent": io.model}
    judges = {
        "second": load_classifier(io.second_model, io.device, num_classes=C),
        "robust": robust,
        "parent": load_classifier(io.model, io.device, num_classes=C),
    }
    result = robust_tasks(
        robust, judges, data.images, data.index, cfg, seed=io.base.seed, device=io.device
    )

    chunk = io.base.chunk_size
    with atomic_output(io.out) as tmp:
        store = create_group(
            tmp,
            {
                "params": cfg.model_dump(mode="json"),
                "robust_model": str(robust_path),
                "class_names": data.index.class_names,
            },
        )
        for name, task in result.tasks.items():
            sub = store.create_group(name)
            for key, arr in task.arrays().items():
                dims = ("image", "channel", "y", "x") if arr.ndim == 4 else ("image", "y", "x")
                write_array(sub, key, arr, dims=dims, chunk_size=chunk, attrs={"range": [0, 1]})
            write_array(sub, task.key, task.classes(), dims=("image",), chunk_size=chunk)
    names, dpi = data.index.class_names, cfg.figure.dpi
    save_figure(generation_figure(result, names, dpi), io.figure_generation, dpi)
    save_figure(inpainting_figure(result, names, dpi), io.figure_inpainting, dpi)
    save_figure(sketch_figure(result, names, dpi), io.figure_sketch, dpi)
    robust_info = {"checkpoint": str(robust_path), "train_eps": robust_eps}
    judge_info = {
        key: {"checkpoint": str(path), "took_part_in_robust_model": took_part(path, robust_path)}
        for key, path in paths.items()
    }
    write_json(io.metrics, {"robust_model": robust_info, "judges": judge_info, **result.metrics})
    gen, inp = result.metrics["generation"], result.metrics["inpainting"]
    log.info(
        "independent judge's p(target) of generated images: a2e %.3f, pgd %.3f; inpainting "
        "masked MSE: a2e %.4f, pgd %.4f, corrupted %.4f",
        *(gen[m][f"{INDEPENDENT}_confidence"] for m in ("a2e", "pgd")),
        *(inp[m]["masked_mse"] for m in ("a2e", "pgd", "corrupted")),
    )


if __name__ == "__main__":
    run(STAGE, main)
