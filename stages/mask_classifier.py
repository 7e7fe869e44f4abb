"""Stage ``mask_classifier``: train f2 (LeNet-style) on training-set LAN masks; test accuracy."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config.core import load
from advinterp.config.lan import MaskClassifierConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, VAL
from advinterp.errors import StoreError
from advinterp.models.mask_classifier import MaskClassifier, mask_classifier_state
from advinterp.models.training import accuracy, fit, make_optimizer
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, open_store, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.mask_classifier")
SHUFFLE_BUFFER = 8192


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True, help="for labels and splits")
    p.add_argument("--masks", type=Path, required=True, help="lan_train's masks.zarr")
    p.add_argument("--model", type=Path, required=True, help="f2 checkpoint to write")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch CSV for dvc plots")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(MaskClassifierConfig, args.params)
    device = resolve_device(base.device)
    index = read_index(open_dataset(args.dataset))
    masks = open_store(args.masks, {"masks": 4})["masks"]
    if masks.shape[0] != index.num_samples:
        raise StoreError(
            f"{args.masks}: {masks.shape[0]} masks for {index.num_samples} dataset rows"
        )
    data = SplitBatches(masks, index.labels, index.split, cfg.batch_size, sample_chunk_size(masks))
    rng = np.random.default_rng(base.seed)

    model = MaskClassifier(len(index.class_names), masks.shape[1], cfg.dropout).to(device)
    optimizer = make_optimizer(model, **cfg.optimizer.model_dump())
    history = fit(
        model,  # type: ignore[arg-type]  # fit only calls model(x), train() and eval()
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=cfg.epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=optimizer,
        device=device,
        generator=torch.Generator().manual_seed(base.seed),
        augment=False,  # a flipped or shifted mask is not the mask of the flipped image
    )
    metrics = {
        "train_accuracy": history[-1]["train_accuracy"],
        "val_accuracy": history[-1]["val_accuracy"] if len(data.rows[VAL]) else None,
        "test_accuracy": accuracy(model, data.ordered(TEST), device),  # type: ignore[arg-type]
        "chance": 1.0 / len(index.class_names),
    }
    log.info(
        "f2 test-mask accuracy %.3f (chance %.3f)", metrics["test_accuracy"], metrics["chance"]
    )
    with atomic_output(args.model) as tmp:
        torch.save(
            mask_classifier_state(
                model, params=cfg.model_dump(mode="json"), seed=base.seed, masks=str(args.masks)
            ),
            tmp,
        )
    with atomic_output(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
