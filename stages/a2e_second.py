"""Stage ``a2e_second``: the second architecture of attack-to-explain's cross-model check."""

from __future__ import annotations

import logging

from advinterp.config.a2e import A2E
from advinterp.config.a2e_second import A2ESecondConfig
from advinterp.data.artifact import load_dataset
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.second_classifier import train_second_classifier
from advinterp.store import write_json
from stages.stage import Stage, StageIO, metrics, out, run

log = logging.getLogger("advinterp.stages.a2e_second")

STAGE = Stage(
    name="a2e_second",
    method=A2E,
    desc="Jalwana et al. Sec. 5.1 (Fig. 5) - train the second architecture of the "
    "cross-model check (VGG-style by default) on the train split with the standard "
    "model's normalisation; its test accuracy.",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "out": out("artifacts/a2e_second/model.pt"),
        "metrics": metrics("artifacts/a2e_second/metrics.json"),
    },
    configs=(A2ESecondConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(A2ESecondConfig)
    data = load_dataset(io.dataset)
    # Loaded before the second model is built: its initial weights come from the global
    # generator right after this model's (as when a2e_explain trained it).
    standard = load_classifier(io.model, io.device, num_classes=data.num_classes)
    log.info("training the second architecture %s", cfg.arch)
    model, scores = train_second_classifier(
        cfg, data.images, data.index.labels, data.index.split, standard, io.device, io.base.seed
    )
    log.info("%s test accuracy %.3f", cfg.arch, scores["test_accuracy"])
    save_classifier(
        io.out,
        model,
        params=cfg.model_dump(mode="json"),
        seed=io.base.seed,
        test_accuracy=scores["test_accuracy"],
    )
    write_json(io.metrics, {"arch": model.arch, **scores, "chance": 1 / data.num_classes})


if __name__ == "__main__":
    run(STAGE, main)
