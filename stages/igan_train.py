"""Stage ``igan_train``: the pooling CNN, naturally and adversarially trained, and one
InterpretGAN per layer of each (Zheng et al. Sec. 3-5, Eq. 4).

Writes into ``--out``: ``natural.pt`` and ``robust.pt`` (classifier checkpoints, the
paper's MNIST architecture; robust = Eq. 2 PGD adversarial training) and
``natural_gans.pt`` / ``robust_gans.pt`` (C, G and D for every interpreted layer).
Metrics: test accuracy of both models and the final interpretability term L_I and
agreement of every generator; CSVs: classifier and L_I curves per epoch.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config.core import load
from advinterp.config.igan import IganTrainConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.errors import DatasetError
from advinterp.explainers.interpretgan import (
    GanSchedule,
    InterpretGAN,
    gans_state,
    train_interpretgan,
)
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import ImageClassifier
from advinterp.models.pooling_cnn import (
    architecture_of,
    channel_stats,
    latent_fn,
    train_pooling_cnn,
)
from advinterp.models.training import accuracy
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.igan_train")
GAN_SHUFFLE_BUFFER = 4096
MODELS = ("natural", "robust")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="directory of checkpoints")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="classifier per-epoch CSV")
    p.add_argument("--gan-history", type=Path, required=True, help="L_I per epoch CSV")
    return p


def train_classifier(
    cfg: IganTrainConfig,
    pooling: str,
    architecture: dict,
    images,
    index,
    mean: list[float],
    std: list[float],
    *,
    robust: bool,
    seed: int,
    device: torch.device,
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """A pooling CNN trained on the train split by the ``igan_train.classifier`` recipe:
    naturally, or (``robust``) with ``igan_train.adversarial``'s PGD training.

    ``pooling_study`` trains its twin through here too, so both arms share one recipe.
    """
    c = cfg.classifier
    return train_pooling_cnn(
        pooling,
        len(index.class_names),
        architecture,
        images,
        index.labels,
        np.flatnonzero(index.split == TRAIN),
        np.flatnonzero(index.split == VAL),
        mean=mean,
        std=std,
        epochs=c.epochs,
        batch_size=c.batch_size,
        lr=c.optimizer.lr,
        momentum=c.optimizer.momentum,
        weight_decay=c.optimizer.weight_decay,
        augment=c.augment,
        chunk_size=sample_chunk_size(images),
        seed=seed,
        device=device,
        adversarial=cfg.adversarial.model_dump() if robust else None,
    )


def train_gans(
    model: ImageClassifier,
    cfg: IganTrainConfig,
    images,
    train_rows: np.ndarray,
    seed: int,
    device: torch.device,
) -> tuple[dict[str, InterpretGAN], dict[str, list[dict[str, float]]]]:
    """One InterpretGAN per configured layer of ``model``, each seeded on its own.

    With ``warm_start`` the deepest layer trains first and every other layer's G and D
    start from the next deeper layer's trained ones (C is always fresh).
    """
    g = cfg.gan
    chunk = sample_chunk_size(images)
    latents = latent_fn(model)
    probe = torch.as_tensor(images[int(train_rows[0]) : int(train_rows[0]) + 1], device=device)
    with torch.no_grad():
        shapes = {k: tuple(v.shape[1:]) for k, v in latents(probe).items()}
    schedule = GanSchedule(
        epochs=g.epochs,
        lam=g.lam,
        lr_g=g.lr_g,
        lr_d=g.lr_d,
        lr_decay=g.lr_decay,
        d_steps=g.d_steps,
    )
    steps = -(-len(train_rows) // g.batch_size)
    gans_by_layer: dict[str, InterpretGAN] = {}
    histories: dict[str, list[dict[str, float]]] = {}
    order = list(reversed(g.layers)) if g.warm_start else list(g.layers)
    previous: InterpretGAN | None = None
    for layer in order:
        k = g.layers.index(layer)
        torch.manual_seed(seed + k)
        rng = np.random.default_rng([seed, k])
        gan = InterpretGAN(
            layer,
            shapes[layer],
            images.shape[-1],
            code_dim=g.code_dim,
            compress_width=g.compress_width,
            gen_width=g.gen_width,
            disc_width=g.disc_width,
            gen_size=g.gen_size,
        )
        if g.warm_start and previous is not None:
            gan.warm_start_from(previous)

        def batches(epoch: int, rng=rng):
            del epoch
            for _, x in iter_shuffled_batches(
                images, train_rows, g.batch_size, chunk, GAN_SHUFFLE_BUFFER, rng
            ):
                yield torch.as_tensor(x)

        histories[layer] = train_interpretgan(gan, model, latents, batches, steps, schedule, device)
        gans_by_layer[layer] = gan
        previous = gan
    gans = {layer: gans_by_layer[layer].cpu() for layer in g.layers}  # forward order
    return gans, {layer: histories[layer] for layer in g.layers}


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(IganTrainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)
    if images.shape[-1] < cfg.gan.gen_size:
        raise DatasetError(
            f"{args.dataset}: images of {images.shape[-1]} px are smaller than "
            f"igan_train.gan.gen_size={cfg.gan.gen_size}"
        )
    rows = {s: np.flatnonzero(index.split == s) for s in (TRAIN, VAL, TEST)}
    mean, std = channel_stats(images, rows[TRAIN], chunk)
    c = cfg.classifier
    arch = {
        "widths": c.widths,
        "fc_width": c.fc_width,
        "input_size": c.input_size,
        "batch_norm": c.batch_norm,
    }
    labels = torch.as_tensor(index.labels)
    test_set = [(x, labels[i]) for i, x in iter_batches(images, rows[TEST], 256, chunk)]

    metrics: dict[str, dict] = {}
    history, gan_history = [], []
    with atomic_output(args.out) as tmp:
        tmp.mkdir()
        for kind in MODELS:
            log.info("%s pooling CNN (%s pooling)", kind, c.pooling)
            model, records = train_classifier(
                cfg,
                c.pooling,
                arch,
                images,
                index,
                mean,
                std,
                robust=kind == "robust",
                seed=base.seed,
                device=device,
            )
            history += [{"model": kind, **r} for r in records]
            metrics[kind] = {
                "test_accuracy": accuracy(model, test_set, device),
                "val_accuracy": records[-1]["val_accuracy"],
            }
            save_classifier(
                tmp / f"{kind}.pt",
                model,
                architecture=architecture_of(model),
                training=kind,
                params=cfg.model_dump(mode="json"),
                seed=base.seed,
            )
            gans, gan_records = train_gans(model, cfg, images, rows[TRAIN], base.seed, device)
            torch.save(gans_state(gans, model=kind, seed=base.seed), tmp / f"{kind}_gans.pt")
            metrics[kind]["gan"] = {
                layer: {
                    "interpretability": recs[-1]["interpretability"],
                    "agreement": recs[-1]["agreement"],
                }
                for layer, recs in gan_records.items()
            }
            for layer, recs in gan_records.items():
                gan_history += [{"model": kind, "layer": layer, **r} for r in recs]
            log.info(
                "%s: test accuracy %.3f; GAN agreement %s",
                kind,
                metrics[kind]["test_accuracy"],
                {k: round(v["agreement"], 3) for k, v in metrics[kind]["gan"].items()},
            )
    wide = pd.DataFrame(history).pivot(index="epoch", columns="model")
    wide.columns = [f"{m}_{col}" for col, m in wide.columns]
    with atomic_output(args.history) as tmp_csv:
        wide.reset_index().to_csv(tmp_csv, index=False)
    frame = pd.DataFrame(gan_history)
    li = frame.pivot(index="epoch", columns=["model", "layer"], values="interpretability")
    li.columns = [f"{m}_{layer}" for m, layer in li.columns]
    with atomic_output(args.gan_history) as tmp_csv:
        li.reset_index().to_csv(tmp_csv, index=False)
    write_json(
        args.metrics,
        {"pooling": c.pooling, "chance": 1.0 / len(index.class_names), **metrics},
    )


if __name__ == "__main__":
    run(main, build)
