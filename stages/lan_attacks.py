"""Stage ``lan_attacks``: FGSM, JSMA and C&W examples that fool f1 (Nguyen et al. Sec. 3).

Crafted on f1 (direct, their Table 2) and on a second architecture trained here
(transfer, Table 3); see :mod:`advinterp.attacks.lan_examples`.
"""

from __future__ import annotations

import logging

from advinterp.attacks.lan_examples import lan_examples, write_lan_examples
from advinterp.config.lan import LAN
from advinterp.config.lan_attacks import LanAttacksConfig
from advinterp.data.artifact import load_dataset
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.store import sample_chunk_size, write_csv, write_json
from stages.stage import Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.lan_attacks")

STAGE = Stage(
    name="lan_attacks",
    method=LAN,
    desc="Nguyen et al. Sec. 3 - FGSM (L-inf), JSMA (L0) and C&W (L2) examples that fool "
    "f1, crafted on f1 (Table 2) and on a second architecture trained here (transfer, "
    "Table 3).",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "source_model": out("artifacts/lan_attacks/source_model.pt"),
        "out": out("artifacts/lan_attacks/adversarial.zarr"),
        "metrics": metrics("artifacts/lan_attacks/metrics.json"),
        "history": plot("artifacts/lan_attacks/source_history.csv"),
    },
    configs=(LanAttacksConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(LanAttacksConfig)
    data = load_dataset(io.dataset)
    images = data.images
    f1 = load_classifier(io.model, io.device, num_classes=data.num_classes)

    result = lan_examples(f1, images, data.index, cfg, seed=io.base.seed, device=io.device)

    provenance = {
        "dataset": str(io.dataset),
        "f1": str(io.model),
        "lan_attacks": cfg.model_dump(mode="json"),
        "seed": io.base.seed,
    }
    save_classifier(io.source_model, result.source, **provenance)
    write_lan_examples(io.out, result, provenance, sample_chunk_size(images))
    write_csv(io.history, result.history)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
