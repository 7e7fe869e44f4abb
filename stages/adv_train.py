"""Stage ``adv_train``: PGD adversarial training (Gulshad et al. Eq. 2), one run per eps.

DVC runs it once per value of ``adv_train.eps`` (``adv_train@<eps>``): adding an eps
trains only the new model. Each run writes ``<models>/at_<eps>.pt`` (see
docs/artifacts.md), its per-epoch history and, as metrics, clean and PGD accuracy of the
robust model beside the standard model's; the stages that read the robust models read
the ``models`` directory, picking the checkpoints ``adv_train.eps`` lists.
"""

from __future__ import annotations

import logging

from advinterp.config.adv_train import AdvTrainConfig
from advinterp.config.attributes import ATTRIBUTES
from advinterp.data.artifact import load_dataset
from advinterp.data.batches import SplitBatches, iter_batches
from advinterp.data.dataset import TEST, split_rows
from advinterp.models.adversarial_training import train_robust_model
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.store import sample_chunk_size, write_csv, write_json
from stages.stage import Stage, StageIO, Unit, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.adv_train")

STAGE = Stage(
    name="adv_train",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 3.1, Eq. 2 - fine-tune the classifier on α·clean + "
    "(1-α)·adversarial cross-entropy with x̂ recomputed per batch by multi-step PGD, one "
    "run per adv_train.eps; clean and PGD accuracy beside the standard model's.",
    inputs={"dataset": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={
        "out": out("artifacts/adv_train/models/at_{unit}.pt"),
        "metrics": metrics("artifacts/adv_train/metrics/at_{unit}.json"),
        "history": plot("artifacts/adv_train/history/at_{unit}.csv"),
    },
    configs=(AdvTrainConfig,),
    unit=Unit(AdvTrainConfig, "eps"),
)


def main(io: StageIO) -> None:
    cfg, eps = io.config(AdvTrainConfig), io.unit
    data = load_dataset(io.dataset)
    images, chunk = data.images, sample_chunk_size(data.images)
    test_rows = split_rows(data.index, TEST, cfg.eval_images, io.base.seed)
    eval_set = [
        (x, data.index.labels[idx])
        for idx, x in iter_batches(images, test_rows, cfg.batch_size, chunk)
    ]
    result = train_robust_model(
        lambda: load_classifier(io.model, io.device, num_classes=data.num_classes),
        SplitBatches(images, data.index.labels, data.index.split, cfg.batch_size, chunk),
        eval_set,
        eps=eps,
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
    save_classifier(
        io.out,
        result.model,
        train_eps=eps,
        # The run's params: the list of eps decides which runs exist, not this model.
        params=cfg.model_dump(mode="json", exclude={"eps"}),
        source=str(io.model),
        seed=io.base.seed,
    )
    write_csv(io.history, result.history)
    write_json(io.metrics, {"eval_images": len(test_rows), result.key: result.metrics})


if __name__ == "__main__":
    run(STAGE, main)
