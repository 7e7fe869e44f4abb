"""Stage ``lan_detect``: Nguyen et al. Tables 1-4, ROC/AUC and the Figure 3 analogue
(:mod:`advinterp.analysis.mask_detection`)."""

from __future__ import annotations

import logging

from advinterp.analysis.mask_detection import (
    chain_example_sets,
    lan_example_sets,
    mask_detection,
    write_roc_curves,
)
from advinterp.config.lan import LAN
from advinterp.config.lan_detect import LanDetectConfig
from advinterp.data.artifact import load_dataset
from advinterp.explainers.lan import load_lan
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.models.mask_classifier import load_mask_classifier
from advinterp.store import open_store, require_array, write_json
from stages.stage import Curve, Stage, StageIO, figure, metrics, plot, run

log = logging.getLogger("advinterp.stages.lan_detect")

STAGE = Stage(
    name="lan_detect",
    method=LAN,
    desc="Nguyen et al. Tables 1-4 - flag an input when f2's class of its LAN mask differs "
    "from f1's class; mask-class retention, TP/TN (direct, transfer), filtered subset with "
    "recovery rate, ROC/AUC of 1 - p_f2(f1 class), the same on the attribute chain's IFGSM "
    "examples; Figure 3 analogue.",
    inputs={
        "dataset": "data/dataset.zarr",
        "model": "artifacts/train/model.pt",
        "lan": "artifacts/lan_train/lan.pt",
        "masks": "artifacts/lan_train/masks.zarr",
        "mask_classifier": "artifacts/mask_classifier/model.pt",
        "adversarial": "artifacts/lan_attacks/adversarial.zarr",
        "ifgsm": "artifacts/attack/adversarial.zarr",
    },
    outputs={
        "metrics": metrics("artifacts/lan_detect/metrics.json"),
        "roc": plot(
            "artifacts/lan_detect/roc",
            Curve(
                "LAN mask detection ROC, direct attacks (score 1 - p_f2(f1 class); "
                "Nguyen et al. lack it)",
                "fpr",
                {f"direct_{a}.csv": "tpr" for a in ("fgsm", "jsma", "cw")},
                name="lan_roc",
            ),
        ),
        "roc_figure": figure("artifacts/lan_detect/roc.png"),
        "figure": figure("artifacts/lan_detect/figure3.png"),
    },
    configs=(LanDetectConfig,),
    optional=("ifgsm",),
)


def main(io: StageIO) -> None:
    cfg = io.config(LanDetectConfig)
    data = load_dataset(io.dataset)
    f1 = load_classifier(io.model, io.device, num_classes=data.num_classes)
    lan = load_lan(io.lan, io.device)
    f2 = load_mask_classifier(io.mask_classifier, io.device)
    masks = require_array(open_store(io.masks, {"masks": 4}), "masks")
    chain = None
    ifgsm = io.optional("ifgsm")
    if ifgsm is None:  # a profile without the attribute chain (the digits)
        log.info("no IFGSM examples in this profile: only LAN's own attacks evaluated")
    elif ifgsm.exists():
        chain = chain_example_sets(ifgsm)
    else:  # a run by hand may leave the chain out
        log.warning("%s not found: IFGSM examples not evaluated", ifgsm)

    result = mask_detection(
        f1,
        lan,
        f2,
        data.images,
        masks,
        data.index,
        lan_example_sets(io.adversarial),
        chain,
        cfg,
        seed=io.base.seed,
        device=io.device,
    )

    write_json(io.metrics, result.metrics)
    write_roc_curves(io.roc, result.curves)
    save_figure(result.roc_figure, io.roc_figure, cfg.figure.dpi)
    save_figure(result.figure, io.figure, cfg.figure.dpi)


if __name__ == "__main__":
    run(STAGE, main)
