"""Stage ``lan_train``: fit the LAN g for f1 (Grimm et al. Eq. 3); masks of every image.

Outputs: g's checkpoint, ``masks.zarr`` (masks for every dataset row, so for the train and
test splits), per-epoch history, metrics and the Figure 1 analogue of Nguyen et al.
"""

from __future__ import annotations

import logging

import torch

from advinterp.config.lan import LAN
from advinterp.config.lan_train import LanTrainConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.lan import lan_state
from advinterp.explainers.lan_training import lan_training
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.store import atomic_output, create_group, write_csv, write_json
from stages.stage import Curve, Stage, StageIO, figure, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.lan_train")

STAGE = Stage(
    name="lan_train",
    method=LAN,
    desc="Nguyen et al. Sec. 2 / Grimm et al. Eq. 2-3 - train the Latent Attention Network g "
    "for f1 (noise corruption of unkept pixels, mask-keep penalty beta); masks of every "
    "image; Figure 1 analogue.",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "lan": out("artifacts/lan_train/lan.pt"),
        "masks": out("artifacts/lan_train/masks.zarr"),
        "metrics": metrics("artifacts/lan_train/metrics.json"),
        "history": plot(
            "artifacts/lan_train/history.csv",
            Curve(
                "LAN training, Grimm et al. Eq. 3",
                "epoch",
                ["objective", "output_loss", "mean_mask"],
            ),
        ),
        "figure": figure("artifacts/lan_train/figure1.png"),
    },
    configs=(LanTrainConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(LanTrainConfig)
    data = load_dataset(io.dataset)
    f1 = load_classifier(io.model, io.device, num_classes=data.num_classes)
    provenance = {
        "dataset": str(io.dataset),
        "model": str(io.model),
        "lan_train": cfg.model_dump(mode="json"),
        "seed": io.base.seed,
    }
    with atomic_output(io.masks) as tmp:
        result = lan_training(
            f1,
            data.images,
            data.index,
            cfg,
            create_group(tmp, {"params": provenance}),
            seed=io.base.seed,
            device=io.device,
        )

    with atomic_output(io.lan) as tmp:
        torch.save(lan_state(result.lan, **provenance), tmp)
    write_csv(io.history, result.history)
    write_json(io.metrics, result.metrics)
    save_figure(result.figure, io.figure, cfg.figure.dpi)


if __name__ == "__main__":
    run(STAGE, main)
