"""Stage ``lan_train``: fit the LAN g for f1 (Grimm et al. Eq. 3); masks of every image.

Outputs: g's checkpoint, ``masks.zarr`` (masks for every dataset row, so for the train and
test splits), per-epoch history, metrics and the Figure 1 analogue of Nguyen et al.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config.core import load
from advinterp.config.lan import LanTrainConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN
from advinterp.explainers.lan import (
    attention_masks,
    build_lan,
    corrupted_agreement,
    lan_state,
    train_lan,
)
from advinterp.explainers.lan_figures import mask_grid_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.models.features import features_and_logits
from advinterp.runtime import resolve_device
from advinterp.store import (
    atomic_output,
    create_array,
    create_group,
    fill_shards,
    sample_chunk_size,
    write_json,
)
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.lan_train")
SHUFFLE_BUFFER = 8192
EVAL_BATCH = 128


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="f1 checkpoint")
    p.add_argument("--lan", type=Path, required=True, help="g checkpoint to write")
    p.add_argument("--masks", type=Path, required=True, help="zarr store of masks to write")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch CSV for dvc plots")
    p.add_argument("--figure", type=Path, required=True, help="Figure 1 analogue (PNG)")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(LanTrainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)
    n = images.shape[0]
    f1 = load_classifier(args.model, device, num_classes=len(index.class_names))
    lan = build_lan(cfg.arch, images.shape[1:], cfg.hidden).to(device)

    train_rows = np.flatnonzero(index.split == TRAIN)
    test_rows = np.flatnonzero(index.split == TEST)
    rng = np.random.default_rng(base.seed)
    generator = torch.Generator().manual_seed(base.seed)
    # f1's clean logits once, instead of one extra forward pass per LAN step.
    clean_logits = np.zeros((n, f1.num_classes), np.float32)
    for idx, x in iter_batches(images, train_rows, EVAL_BATCH, chunk):
        clean_logits[idx] = features_and_logits(f1, x, EVAL_BATCH, device)[1]
    history = train_lan(
        lan,
        f1,
        lambda epoch: (
            (x, clean_logits[idx])
            for idx, x in iter_shuffled_batches(
                images, train_rows, cfg.batch_size, chunk, SHUFFLE_BUFFER, rng
            )
        ),
        epochs=cfg.epochs,
        steps_per_epoch=math.ceil(len(train_rows) / cfg.batch_size),
        lr=cfg.lr,
        beta=cfg.beta,
        noise=cfg.noise,
        generator=generator,
        device=device,
        output_loss=cfg.output_loss,
        constant=cfg.noise_constant,
    )

    provenance = {
        "dataset": str(args.dataset),
        "model": str(args.model),
        "lan_train": cfg.model_dump(mode="json"),
        "seed": base.seed,
    }
    with atomic_output(args.lan) as tmp:
        torch.save(lan_state(lan, **provenance), tmp)

    with atomic_output(args.masks) as tmp:
        out = create_group(tmp, {"params": provenance})
        masks = create_array(
            out,
            "masks",
            tuple(images.shape),
            "float32",
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk,
            attrs={
                "range": [0.0, 1.0],
                "meaning": "LAN keep mask g(x): 1 = important to f1, 0 = replaceable by noise",
                "index": "dataset row",
            },
        )
        fill_shards(
            {"masks": masks},
            lambda sl: {"masks": attention_masks(lan, images[sl], EVAL_BATCH, device)},
            n,
            chunk,
            desc="masks",
        )
        test_masks = np.asarray(masks.get_orthogonal_selection((test_rows,)))

    test_images = np.asarray(images.get_orthogonal_selection((test_rows,)))
    agreement = corrupted_agreement(
        lan,
        f1,
        test_images,
        cfg.noise,
        torch.Generator().manual_seed(base.seed + 1),
        EVAL_BATCH,
        device,
        cfg.noise_constant,
    )
    metrics = {
        "objective_first_epoch": history[0]["objective"],
        "objective_last_epoch": history[-1]["objective"],
        "output_loss_last_epoch": history[-1]["output_loss"],
        "mean_mask_train_last_epoch": history[-1]["mean_mask"],
        "mean_mask_test": float(test_masks.mean()),
        "f1_agreement_corrupted_test": agreement,
    }
    log.info(
        "LAN: mean test mask %.3f, f1 keeps its decision on %.3f of corrupted test images",
        metrics["mean_mask_test"],
        agreement,
    )
    with atomic_output(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(args.metrics, metrics)

    # Figure 1 analogue: the first test image of each of the first classes.
    labels = index.labels[test_rows]
    picks = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)[: cfg.figure_classes]]
    fig = mask_grid_figure(
        test_images[picks],
        test_masks[picks],
        [index.class_names[int(labels[i])] for i in picks],
        dpi=cfg.figure.dpi,
    )
    with atomic_output(args.figure) as tmp:
        fig.savefig(tmp, format="png")


if __name__ == "__main__":
    run(main, build)
