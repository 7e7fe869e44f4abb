"""Stage ``localized_attack``: targeted BIM confined to Felzenszwalb regions (Göpfert et al.).

Chooses correctly classified test images (not of the target class), segments each,
attacks up to ``max_regions`` of its largest regions one at a time towards the one
target class, keeps the successful attempts and counts the failed and stalled ones
(:mod:`advinterp.attacks.localized_campaign`).
"""

from __future__ import annotations

import logging

import numpy as np

from advinterp.attacks.localized_campaign import localized_campaign, write_attacks
from advinterp.config.localized import LOCALIZED
from advinterp.config.localized_attack import LocalizedAttackConfig
from advinterp.data.artifact import load_dataset
from advinterp.data.dataset import TEST
from advinterp.models.checkpoint import load_classifier
from advinterp.store import atomic_output, create_group, write_csv, write_json
from stages.stage import Stage, StageIO, metrics, out, run

log = logging.getLogger("advinterp.stages.localized_attack")

STAGE = Stage(
    name="localized_attack",
    method=LOCALIZED,
    desc="Göpfert et al. Sec. 4 - targeted BIM confined to each of the 10 largest Felzenszwalb "
    "regions of chosen test images (one target class); failed or stalled attempts discarded "
    "and counted.",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "out": out("artifacts/localized_attack/attacks.zarr"),
        "metrics": metrics("artifacts/localized_attack/metrics.json"),
        "attempts": out("artifacts/localized_attack/attempts.csv"),
    },
    configs=(LocalizedAttackConfig,),
    base=("seed", "device", "num_threads", "chunk_size"),
)


def main(io: StageIO) -> None:
    cfg = io.config(LocalizedAttackConfig)
    data = load_dataset(io.dataset)
    classes = data.index.class_names
    model = load_classifier(io.model, io.device, num_classes=len(classes))
    attacks = localized_campaign(
        model,
        data.images,
        data.index.labels,
        np.flatnonzero(data.index.split == TEST),
        classes,
        cfg,
        seed=io.base.seed,
        device=io.device,
    )
    provenance = {
        "dataset": str(io.dataset),
        "model": str(io.model),
        "localized_attack": cfg.model_dump(mode="json"),
        "seed": io.base.seed,
    }
    attrs = {
        "params": provenance,
        "target": attacks.target,
        "target_name": classes[attacks.target],
        "class_names": classes,
    }
    with atomic_output(io.out) as tmp:
        write_attacks(create_group(tmp, attrs), attacks, data.index.labels, io.base.chunk_size)
    write_csv(io.attempts, attacks.attempts_table())
    write_json(io.metrics, attacks.metrics())


if __name__ == "__main__":
    run(STAGE, main)
