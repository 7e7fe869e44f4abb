"""Stage ``adv_train``: PGD adversarial training (Gulshad et al. Eq. 2), one model per eps.

Writes ``<out>/at_<eps>.pt`` per eps (see docs/artifacts.md), per-epoch history and, as
metrics, clean and PGD accuracy of every robust model beside the standard model's.
"""

from __future__ import annotations

import logging

from advinterp.config.attributes import ATTRIBUTES, AdvTrainConfig
from advinterp.data.artifact import load_dataset
from advinterp.data.batches import SplitBatches, iter_batches
from advinterp.data.dataset import TEST, split_rows
from advinterp.models.adversarial_training import train_robust_models
from advinterp.models.chain_checkpoints import robust_checkpoint
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.store import atomic_output, sample_chunk_size, write_csv, write_json
from stages.stage import Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.adv_train")

STAGE = Stage(
    name="adv_train",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 3.1, Eq. 2 - fine-tune the classifier on α·clean + "
    "(1-α)·adversarial cross-entropy with x̂ recomputed per batch by multi-step PGD, one "
    "robust model per adv_train.eps; clean and PGD accuracy beside the standard model's.",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "out": out("artifacts/adv_train/models"),
        "metrics": metrics("artifacts/adv_train/metrics.json"),
        "history": plot("artifacts/adv_train/history.csv"),
    },
    configs=(AdvTrainConfig,),
)


def main(io: StageIO) -> None:
    cfg = io.config(AdvTrainConfig)
    data = load_dataset(io.dataset)
    images, chunk = data.images, sample_chunk_size(data.images)
    test_rows = split_rows(data.index, TEST, cfg.eval_images, io.base.seed)
    eval_set = [
        (x, data.index.labels[idx])
        for idx, x in iter_batches(images, test_rows, cfg.batch_size, chunk)
    ]
    result = train_robust_models(
        lambda: load_classifier(io.model, io.device, num_classes=data.num_classes),
        SplitBatches(images, data.index.labels, data.index.split, cfg.batch_size, chunk),
        eval_set,
        eps=cfg.eps,
        alpha=cfg.alpha,
        steps=cfg.steps,
        step_size=cfg.step_size,
        epochs=cfg.epochs,
        optimizer=cfg.optimizer.model_dump(),
        augment=cfg.augment,
        eval_steps=cfg.eval_steps,
        device=io.device,
        seed=io.base.seed,
    )
    with atomic_output(io.out) as tmp:
        tmp.mkdir()
        for key, model in result.models.items():
            save_classifier(
                robust_checkpoint(tmp, key),
                model,
                train_eps=result.metrics[key]["train_eps"],
                params=cfg.model_dump(mode="json"),
                source=str(io.model),
                seed=io.base.seed,
            )
    write_csv(io.history, result.history)
    write_json(io.metrics, {"eval_images": len(test_rows), **result.metrics})


if __name__ == "__main__":
    run(STAGE, main)
