"""Stage ``igan_train``: the pooling CNN, naturally and adversarially trained, and one
InterpretGAN per layer of each (Zheng et al. Sec. 3-5, Eq. 4).

Writes into ``--out``: ``natural.pt`` and ``robust.pt`` (classifier checkpoints, the
paper's MNIST architecture; robust = Eq. 2 PGD adversarial training) and
``natural_gans.pt`` / ``robust_gans.pt`` (C, G and D for every interpreted layer).
"""

from __future__ import annotations

import logging

from advinterp.config.igan import IGAN
from advinterp.config.igan_train import IganTrainConfig
from advinterp.data.artifact import load_dataset
from advinterp.errors import DatasetError
from advinterp.explainers.interpretgan_training import (
    MODELS,
    save_igan_models,
    train_igan_models,
)
from advinterp.models.pooling_cnn import LAYERS
from advinterp.store import atomic_output, write_csv, write_json
from stages.stage import Curve, Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.igan_train")

STAGE = Stage(
    name="igan_train",
    method=IGAN,
    desc="Train the paper's pooling CNN naturally and with PGD adversarial training, and one "
    "InterpretGAN (compression C, generator G, discriminator D; GAN objective + λ L_I, Zheng "
    "et al. Eqs. 2-4) for every conv and FC layer of each.",
    inputs={"dataset": "data/dataset.zarr"},
    outputs={
        "out": out("artifacts/igan_train/models"),
        "metrics": metrics("artifacts/igan_train/metrics.json"),
        "history": plot(
            "artifacts/igan_train/history.csv",
            Curve(
                "Pooling CNN training, natural and PGD adversarial (Zheng et al.)",
                "epoch",
                [f"{kind}_val_accuracy" for kind in MODELS],
            ),
        ),
        "gan_history": plot(
            "artifacts/igan_train/gan_history.csv",
            Curve(
                "InterpretGAN interpretability term L_I per epoch and layer (Zheng et al. Eq. 3)",
                "epoch",
                [f"{kind}_{layer}" for kind in MODELS for layer in LAYERS],
            ),
        ),
    },
    configs=(IganTrainConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(IganTrainConfig)
    data = load_dataset(io.dataset)
    images = data.images
    if images.shape[-1] < cfg.gan.gen_size:
        raise DatasetError(
            f"{io.dataset}: images of {images.shape[-1]} px are smaller than "
            f"igan_train.gan.gen_size={cfg.gan.gen_size}"
        )
    trained = train_igan_models(data, cfg, seed=io.base.seed, device=io.device)
    with atomic_output(io.out) as tmp:
        tmp.mkdir()
        save_igan_models(tmp, trained, params=cfg.model_dump(mode="json"), seed=io.base.seed)
    for path, frame in ((io.history, trained.history), (io.gan_history, trained.gan_history)):
        write_csv(path, frame)
    write_json(io.metrics, trained.metrics)


if __name__ == "__main__":
    run(STAGE, main)
