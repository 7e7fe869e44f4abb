"""Stage ``train_detector``: Faster R-CNN with an attribute head on part boxes (Eq. 7).

Trains on the train split's part boxes (object class = part, per-box attribute labels)
or loads a local checkpoint; scores AP/recall per part at an IoU threshold on a test
subset (:func:`advinterp.detection.experiment.train_and_score`).
"""

from __future__ import annotations

import logging

from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.train_detector import TrainDetectorConfig
from advinterp.data.artifact import load_dataset
from advinterp.detection.attribute_rcnn import save_detector
from advinterp.detection.experiment import train_and_score
from advinterp.store import write_csv, write_json
from stages.stage import Curve, Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.train_detector")

STAGE = Stage(
    name="train_detector",
    method=ATTRIBUTES,
    desc="Train the attribute detector of Gulshad et al. Eq. 7 (torchvision Faster R-CNN whose "
    "box head also predicts attributes, as in bottom-up attention) on the train split's part "
    "boxes; AP/recall per part at IoU 0.5 on test images.",
    inputs={"dataset": "data/dataset.zarr"},
    outputs={
        "model": out("artifacts/train_detector/detector.pt"),
        "metrics": metrics("artifacts/train_detector/metrics.json"),
        "history": plot(
            "artifacts/train_detector/history.csv",
            Curve(
                "Attribute detector training loss",
                "epoch",
                ["loss", "loss_classifier", "loss_box_reg", "loss_attributes", "loss_objectness"],
            ),
        ),
    },
    configs=(TrainDetectorConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(TrainDetectorConfig)
    data = load_dataset(io.dataset)
    result = train_and_score(
        data.images, data.index, cfg, io.base.seed, io.device, origin=str(io.dataset)
    )
    save_detector(io.model, result.model, params=cfg.model_dump(mode="json"), seed=io.base.seed)
    write_csv(io.history, result.history)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
