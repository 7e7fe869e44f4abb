"""Stage ``mask_classifier``: train f2 (LeNet-style) on training-set LAN masks; test accuracy."""

from __future__ import annotations

import logging

import torch

from advinterp.config.lan import LAN
from advinterp.config.mask_classifier import MaskClassifierConfig
from advinterp.data.artifact import load_dataset
from advinterp.errors import StoreError
from advinterp.models.mask_classifier import mask_classifier_state
from advinterp.models.mask_training import train_mask_classifier
from advinterp.store import atomic_output, open_store, require_array, write_csv, write_json
from stages.stage import Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.mask_classifier")

STAGE = Stage(
    name="mask_classifier",
    method=LAN,
    desc="Nguyen et al. Sec. 3 - train f2, a LeNet-style CNN, on the training-set LAN masks "
    "to predict the image class; its accuracy on test masks (paper 60% on CIFAR-10).",
    inputs={"dataset": "data/dataset.zarr", "masks": "artifacts/lan_train/masks.zarr"},
    outputs={
        "model": out("artifacts/mask_classifier/model.pt"),
        "metrics": metrics("artifacts/mask_classifier/metrics.json"),
        "history": plot("artifacts/mask_classifier/history.csv"),
    },
    configs=(MaskClassifierConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(MaskClassifierConfig)
    index = load_dataset(io.dataset).index
    masks = require_array(open_store(io.masks, {"masks": 4}), "masks")
    if masks.shape[0] != index.num_samples:
        raise StoreError(f"{io.masks}: {masks.shape[0]} masks for {index.num_samples} dataset rows")

    result = train_mask_classifier(masks, index, cfg, seed=io.base.seed, device=io.device)

    log.info(
        "f2 test-mask accuracy %.3f (chance %.3f)",
        result.metrics["test_accuracy"],
        result.metrics["chance"],
    )
    with atomic_output(io.model) as tmp:
        state = mask_classifier_state(
            result.model, params=cfg.model_dump(mode="json"), seed=io.base.seed, masks=str(io.masks)
        )
        torch.save(state, tmp)
    write_csv(io.history, result.history)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
