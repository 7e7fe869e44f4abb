"""Stage ``train``: fit the classifier f on the train split; report val/test accuracy."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config import TrainConfig, load_section
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, VAL
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import load_pretrained, save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.models.training import accuracy, fit, make_optimizer
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.train")
SHUFFLE_BUFFER = 8192


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="checkpoint to write")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch CSV for dvc plots")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load_section(TrainConfig, "train", args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)

    model = build_classifier(cfg.arch, len(index.class_names), cfg.mean, cfg.std)
    if cfg.weights is not None:
        try:
            fresh = load_pretrained(model, cfg.weights)
        except CheckpointError as err:
            raise CheckpointError(f"train.weights: {err}") from None
        log.info("initialised from %s; fresh: %s", cfg.weights, ", ".join(fresh) or "nothing")
    model.to(device)

    data = SplitBatches(images, index.labels, index.split, cfg.batch_size, chunk)
    rng = np.random.default_rng(base.seed)
    optimizer = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    history = fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=cfg.epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=optimizer,
        device=device,
        generator=torch.Generator().manual_seed(base.seed),
        augment=cfg.augment,
        label_smoothing=cfg.label_smoothing,
    )
    metrics = {
        "train_accuracy": history[-1]["train_accuracy"],
        "val_accuracy": accuracy(model, data.ordered(VAL), device) if len(data.rows[VAL]) else None,
        "test_accuracy": accuracy(model, data.ordered(TEST), device),
        "chance": 1.0 / len(index.class_names),
    }
    log.info("test accuracy %.3f (chance %.3f)", metrics["test_accuracy"], metrics["chance"])
    save_classifier(args.model, model, params=cfg.model_dump(mode="json"), seed=base.seed)
    with atomic_output(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
