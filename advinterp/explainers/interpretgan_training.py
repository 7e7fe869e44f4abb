"""The models InterpretGAN diagnoses and their GANs (Zheng et al. Sec. 3-5, Eqs. 2 and 4).

``igan_train`` trains the paper's pooling CNN twice, naturally and with Eq. 2 PGD
adversarial training (:func:`advinterp.models.pooling_cnn.train_classifier`), and one
InterpretGAN per interpreted layer of each (:func:`train_gans`). The checkpoint
directory it writes holds ``<kind>.pt`` (the classifier) and ``<kind>_gans.pt`` (C, G
and D of every layer) for each kind in :data:`MODELS`; :func:`load_igan_model` and
:func:`load_igan_gans` read them back for the downstream stages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from advinterp.config.igan_train import IganGanParams, IganTrainConfig
from advinterp.data.artifact import DatasetArtifact
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TEST, TRAIN
from advinterp.explainers.interpretgan import (
    GanSchedule,
    InterpretGAN,
    gans_from_state,
    gans_state,
    train_interpretgan,
)
from advinterp.models.checkpoint import read_weights_file, save_classifier
from advinterp.models.classifier import ImageClassifier
from advinterp.models.pooling_cnn import (
    architecture_of,
    channel_stats,
    latent_fn,
    pooling_cnn_from_checkpoint,
    recipe_architecture,
    train_classifier,
)
from advinterp.models.training import accuracy

log = logging.getLogger(__name__)

GAN_SHUFFLE_BUFFER = 4096
"""Samples held by the streaming shuffle of one GAN training epoch."""
MODELS: tuple[str, ...] = ("natural", "robust")
"""The two diagnosed models: naturally and PGD adversarially trained."""


def train_gans(
    model: ImageClassifier,
    images: Any,
    train_rows: np.ndarray,
    params: IganGanParams,
    *,
    chunk_size: int,
    seed: int,
    device: torch.device,
) -> tuple[dict[str, InterpretGAN], dict[str, list[dict[str, float]]]]:
    """One InterpretGAN per layer of ``params.layers`` for ``model`` (Eq. 4), each seeded
    on its own (torch ``seed + k``, numpy ``[seed, k]`` for the layer's index k).

    With ``warm_start`` the deepest layer trains first and every other layer's G and D
    start from the next deeper layer's trained ones (C is always fresh).

    Shape:
        images: (N, C, H, W) float32 in [0, 1], read ``chunk_size`` rows per shard;
        train_rows: sorted row indices of the train split.

    Returns:
        The GANs on the CPU and their per-epoch records (see
        :func:`train_interpretgan`), both by layer in forward order.
    """
    g = params
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
            channels=images.shape[1],
            code_dim=g.code_dim,
            compress_width=g.compress_width,
            gen_width=g.gen_width,
            disc_width=g.disc_width,
            gen_size=g.gen_size,
        )
        if g.warm_start and previous is not None:
            gan.warm_start_from(previous)

        def batches(epoch: int, rng: np.random.Generator = rng):
            del epoch
            for _, x in iter_shuffled_batches(
                images, train_rows, g.batch_size, chunk_size, GAN_SHUFFLE_BUFFER, rng
            ):
                yield torch.as_tensor(x)

        histories[layer] = train_interpretgan(gan, model, latents, batches, steps, schedule, device)
        gans_by_layer[layer] = gan
        previous = gan
    gans: dict[str, InterpretGAN] = {layer: gans_by_layer[layer].cpu() for layer in g.layers}
    return gans, {layer: histories[layer] for layer in g.layers}  # forward order


@dataclass
class IganTraining:
    """What ``igan_train`` produces.

    Attributes:
        models: kind (:data:`MODELS`) -> the trained pooling CNN, eval mode.
        gans: kind -> layer -> its trained InterpretGAN (CPU), layers in forward order.
        metrics: pooling kind, chance, and per model test/val accuracy and each GAN's
            final L_I and agreement.
        history: one row per epoch, ``<kind>_<column>`` of the classifier records.
        gan_history: one row per epoch, ``<kind>_<layer>`` = the GAN's mean L_I.
    """

    models: dict[str, ImageClassifier]
    gans: dict[str, dict[str, InterpretGAN]]
    metrics: dict[str, Any]
    history: pd.DataFrame
    gan_history: pd.DataFrame


def train_igan_models(
    data: DatasetArtifact,
    cfg: IganTrainConfig,
    *,
    seed: int,
    device: torch.device,
) -> IganTraining:
    """The natural and the robust pooling CNN and the InterpretGANs of their layers.

    Both classifiers are normalised by the train split's channel statistics and
    trained by the same ``igan_train.classifier`` recipe and seed; the robust one adds
    ``igan_train.adversarial``'s PGD training (Eq. 2). Accuracy is measured on the
    whole test split.

    Shape:
        data.images: (N, C, H, W) float32 in [0, 1], rows as in ``data.index``.
    """
    images, index, chunk_size = data.images, data.index, data.chunk
    rows = {s: np.flatnonzero(index.split == s) for s in (TRAIN, TEST)}
    mean, std = channel_stats(images, rows[TRAIN], chunk_size)
    c = cfg.classifier
    arch = {k: v for k, v in recipe_architecture(c).items() if k != "pooling"}
    test_set = [(x, index.labels[i]) for i, x in iter_batches(images, rows[TEST], 256, chunk_size)]

    models: dict[str, ImageClassifier] = {}
    gans: dict[str, dict[str, InterpretGAN]] = {}
    metrics: dict[str, dict] = {}
    history, gan_history = [], []
    for kind in MODELS:
        log.info("%s pooling CNN (%s pooling)", kind, c.pooling)
        model, records = train_classifier(
            cfg,
            c.pooling,
            arch,
            images,
            index.labels,
            index.split,
            len(index.class_names),
            mean=mean,
            std=std,
            chunk_size=chunk_size,
            robust=kind == "robust",
            seed=seed,
            device=device,
        )
        history += [{"model": kind, **r} for r in records]
        metrics[kind] = {
            "test_accuracy": accuracy(model, test_set, device),
            "val_accuracy": records[-1]["val_accuracy"],
        }
        models[kind] = model
        gans[kind], gan_records = train_gans(
            model, images, rows[TRAIN], cfg.gan, chunk_size=chunk_size, seed=seed, device=device
        )
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
    frame = pd.DataFrame(gan_history)
    li = frame.pivot(index="epoch", columns=["model", "layer"], values="interpretability")
    li.columns = [f"{m}_{layer}" for m, layer in li.columns]
    return IganTraining(
        models=models,
        gans=gans,
        metrics={"pooling": c.pooling, "chance": 1.0 / len(index.class_names), **metrics},
        history=wide.reset_index(),
        gan_history=li.reset_index(),
    )


def model_path(directory: Path, kind: str) -> Path:
    """The classifier checkpoint of ``kind`` in ``igan_train``'s directory."""
    return Path(directory) / f"{kind}.pt"


def gans_path(directory: Path, kind: str) -> Path:
    """The InterpretGANs of ``kind``'s layers in ``igan_train``'s directory."""
    return Path(directory) / f"{kind}_gans.pt"


def save_igan_models(
    directory: Path, trained: IganTraining, *, params: dict[str, Any], seed: int
) -> None:
    """Write every model and its GANs into the (existing) ``directory``."""
    for kind, model in trained.models.items():
        save_classifier(
            model_path(directory, kind),
            model,
            architecture=architecture_of(model),
            training=kind,
            params=params,
            seed=seed,
        )
        torch.save(
            gans_state(trained.gans[kind], model=kind, seed=seed), gans_path(directory, kind)
        )


def load_igan_model(directory: Path, kind: str, device: torch.device) -> ImageClassifier:
    """The pooling CNN ``kind`` of ``igan_train``'s directory, on ``device``, eval mode.

    Raises:
        CheckpointError: naming the file when it is missing or not a pooling CNN.
    """
    path = model_path(directory, kind)
    return pooling_cnn_from_checkpoint(read_weights_file(path, device), str(path)).to(device)


def load_igan_gans(directory: Path, kind: str, device: torch.device) -> dict[str, InterpretGAN]:
    """The InterpretGANs of model ``kind``, by layer in forward order, on ``device``.

    Raises:
        CheckpointError: naming the file when it is missing or not an InterpretGAN state.
    """
    path = gans_path(directory, kind)
    return {k: g.to(device) for k, g in gans_from_state(read_weights_file(path), str(path)).items()}


def load_igan_models(
    directory: Path, device: torch.device
) -> dict[str, tuple[ImageClassifier, dict[str, InterpretGAN]]]:
    """Every model of :data:`MODELS` with its InterpretGANs, read in that order."""
    return {
        kind: (load_igan_model(directory, kind, device), load_igan_gans(directory, kind, device))
        for kind in MODELS
    }
