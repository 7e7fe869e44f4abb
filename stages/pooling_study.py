"""Stage ``pooling_study``: max vs average pooling under adversarial training
(Zheng et al. Sec. 5.2, Tables 2-3).

The robust pooling CNN of ``igan_train`` is one arm; this stage trains its twin with
the other pooling kind by the same recipe and seed (:mod:`advinterp.analysis.pooling_study`)
and scores both on the same class-stratified test images.
"""

from __future__ import annotations

from advinterp.analysis.evaluation_images import evaluation_images
from advinterp.analysis.pooling_study import compare_pooling, train_twin
from advinterp.config.igan import IGAN
from advinterp.config.igan_train import IganTrainConfig
from advinterp.config.pooling_study import PoolingStudyConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.interpretgan_training import load_igan_model, model_path
from advinterp.models.checkpoint import save_classifier
from advinterp.models.pooling_cnn import architecture_of
from advinterp.store import write_csv, write_json
from stages.stage import Keys, Stage, StageIO, metrics, out, run, table

STAGE = Stage(
    name="pooling_study",
    method=IGAN,
    desc="Max vs average pooling, both PGD adversarially trained by the same recipe and seed; "
    "robust accuracy under PGD with two step counts, momentum PGD and FGSM "
    "(Zheng et al. Tables 2-3).",
    inputs={"dataset": "data/dataset.zarr", "models": "artifacts/igan_train/models"},
    outputs={
        "twin": out("artifacts/pooling_study/twin.pt"),
        "metrics": metrics("artifacts/pooling_study/metrics.json"),
        "table": table("artifacts/pooling_study/table.csv"),
    },
    configs=(Keys(IganTrainConfig, ("classifier", "adversarial")), PoolingStudyConfig),
)


def main(io: StageIO) -> None:
    cfg = io.config(PoolingStudyConfig)
    recipe = io.config(IganTrainConfig)
    seed = io.base.seed
    data = load_dataset(io.dataset)
    origin = str(model_path(io.models, "robust"))
    robust = load_igan_model(io.models, "robust", io.device)
    twin, history = train_twin(
        robust,
        recipe,
        data.images,
        data.index,
        chunk_size=data.chunk,
        seed=seed,
        device=io.device,
        origin=origin,
    )
    save_classifier(
        io.twin,
        twin,
        architecture=architecture_of(twin),
        training="robust",
        twin_of=origin,
        params=recipe.model_dump(mode="json"),
        seed=seed,
    )
    test = evaluation_images(data, cfg.max_images, seed=seed, device=io.device)
    arms = {architecture_of(robust)["pooling"]: robust, architecture_of(twin)["pooling"]: twin}
    study = compare_pooling(
        arms, test.x, test.y, cfg, seed, twin_val_accuracy=history[-1]["val_accuracy"]
    )
    write_csv(io.table, study.table)
    write_json(io.metrics, study.metrics)


if __name__ == "__main__":
    run(STAGE, main)
