"""Stage ``train``: fit the classifier f on the train split; report val/test accuracy."""

from __future__ import annotations

import logging

from advinterp.config.core import SHARED
from advinterp.config.train import TrainConfig
from advinterp.data.artifact import load_dataset
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import load_pretrained, save_classifier
from advinterp.models.classifier import build_classifier, check_normalisation
from advinterp.models.training import fit_on_split, split_metrics
from advinterp.store import write_csv, write_json
from stages.stage import Curve, Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.train")

STAGE = Stage(
    name="train",
    method=SHARED,
    desc="Train (or fine-tune) the classifier f on the train split; clean val/test accuracy.",
    inputs={"dataset": "data/dataset.zarr"},
    outputs={
        "model": out("artifacts/train/model.pt"),
        "metrics": metrics("artifacts/train/metrics.json"),
        "history": plot(
            "artifacts/train/history.csv",
            Curve("Classifier training", "epoch", ["train_accuracy", "val_accuracy"]),
        ),
    },
    configs=(TrainConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(TrainConfig)
    data = load_dataset(io.dataset)

    check_normalisation(cfg.mean, cfg.std, data.images.shape[1], "train")
    model = build_classifier(cfg.arch, data.num_classes, cfg.mean, cfg.std)
    if cfg.weights is not None:
        try:
            fresh = load_pretrained(model, cfg.weights)
        except CheckpointError as err:
            raise CheckpointError(f"train.weights: {err}") from None
        log.info("initialised from %s; fresh: %s", cfg.weights, ", ".join(fresh) or "nothing")
    model.to(io.device)

    batches, history = fit_on_split(
        model,
        data.images,
        data.index.labels,
        data.index.split,
        cfg,
        device=io.device,
        seed=io.base.seed,
        augment=cfg.augment,
        label_smoothing=cfg.label_smoothing,
    )
    scores = {
        **split_metrics(model, batches, history, io.device),
        "chance": 1 / data.num_classes,
    }
    log.info("test accuracy %.3f (chance %.3f)", scores["test_accuracy"], scores["chance"])
    save_classifier(io.model, model, params=cfg.model_dump(mode="json"), seed=io.base.seed)
    write_csv(io.history, history)
    write_json(io.metrics, scores)


if __name__ == "__main__":
    run(STAGE, main)
