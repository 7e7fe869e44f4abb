"""InterpretGAN explanations of natural and PGD images, layer by layer, beside captum's
pixel attributions (Zheng et al. Figures 3 and 5).

For each diagnosed model and each example x (natural, then its PGD adversarial x*)
this computes the explanation ``G_i(C_i(f_pre_i(x)))`` of every interpreted layer i,
the class f gives each explanation, and the saliency, integrated-gradients and
occlusion maps of f's class on the input. The examples are the first correctly
classified test images of distinct classes by the natural model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advinterp.analysis.interpretgan_figures import INPUTS
from advinterp.analysis.robustness import attack_batches, predictions
from advinterp.attacks.pgd import pgd
from advinterp.config.igan_explain import IganExplainConfig
from advinterp.data.artifact import DatasetArtifact
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST
from advinterp.errors import DatasetError
from advinterp.explainers.captum_baselines import BASELINES, baseline_maps
from advinterp.explainers.interpretgan import InterpretGAN, explain
from advinterp.models.classifier import ImageClassifier
from advinterp.models.pooling_cnn import latent_fn
from advinterp.store import create_group, write_array

DIMS: dict[str, tuple[str, ...]] = {
    "adversarial": ("sample", "channel", "y", "x"),
    "predictions": ("sample", "input"),
    "explanations": ("sample", "input", "layer", "channel", "y", "x"),
    "explanation_classes": ("sample", "input", "layer"),
    "baselines": ("sample", "input", "method", "y", "x"),
}
"""The arrays :func:`explain_model` returns and their dims."""


def pick_examples(
    model: ImageClassifier,
    images: Any,
    labels: np.ndarray,
    rows: np.ndarray,
    k: int,
    *,
    chunk_size: int,
    device: torch.device,
) -> np.ndarray:
    """The first ``k`` of ``rows`` f classifies correctly, one per class (sorted rows).

    Raises:
        DatasetError: when f classifies none of them correctly.
    """
    chosen: dict[int, int] = {}
    for idx, x in iter_batches(images, rows, 128, chunk_size):
        pred = predictions(model, torch.as_tensor(x, device=device)).cpu().numpy()
        for i, p in zip(idx, pred, strict=True):
            if p == labels[i] and int(labels[i]) not in chosen:
                chosen[int(labels[i])] = int(i)
            if len(chosen) == k:
                return np.sort(np.array(list(chosen.values())))
    if not chosen:
        raise DatasetError("no test image is classified correctly by the natural model")
    return np.sort(np.array(list(chosen.values())))


def explain_model(
    model: ImageClassifier,
    gans: Mapping[str, InterpretGAN],
    x: torch.Tensor,
    cfg: IganExplainConfig,
    seed: int,
) -> dict[str, np.ndarray]:
    """PGD images of ``x`` (against f's own classes), every layer's explanations of
    both, f's classes on them and the baseline maps of f's class (:data:`DIMS`).

    Shape:
        x: (n, 3, H, W) float32 in [0, 1]. Returns ``adversarial`` (n, 3, H, W),
        ``predictions`` (n, 2) int64, ``explanations`` (n, 2, L, 3, H, W) in [0, 1],
        ``explanation_classes`` (n, 2, L) int64, ``baselines`` (n, 2, B, H, W) float32.
    """
    attack = partial(
        pgd, eps=cfg.eps, steps=cfg.steps, generator=torch.Generator().manual_seed(seed)
    )
    pred = predictions(model, x)
    x_adv = attack_batches(attack, model, x, pred, len(x))
    latents = latent_fn(model)
    expl, classes, maps = [], [], []
    for inp, target in ((x, pred), (x_adv, predictions(model, x_adv))):
        e = torch.stack([explain(g, latents, inp) for g in gans.values()], 1)  # (n, L, 3, H, W)
        expl.append(e)
        classes.append(predictions(model, e.flatten(0, 1)).view(e.shape[:2]))
        m = baseline_maps(
            model,
            inp,
            target,
            ig_steps=cfg.ig_steps,
            occlusion_window=cfg.occlusion_window,
            occlusion_stride=cfg.occlusion_stride,
        )
        maps.append(torch.stack([m[name] for name in BASELINES], 1))  # (n, B, H, W)
    return {
        "adversarial": x_adv.cpu().numpy(),
        "predictions": torch.stack([pred, predictions(model, x_adv)], 1).cpu().numpy(),
        "explanations": torch.stack(expl, 1).cpu().numpy(),
        "explanation_classes": torch.stack(classes, 1).cpu().numpy(),
        "baselines": torch.stack(maps, 1).cpu().numpy(),
    }


@dataclass
class IganExplanations:
    """Explanations of the same examples by every model.

    Attributes:
        rows: (n,) dataset rows of the examples, sorted.
        images: (n, 3, H, W) float32 in [0, 1]; labels: (n,) int64.
        layers: the interpreted layers, forward order; methods: the baseline names.
        results: model kind -> :func:`explain_model`'s arrays.
    """

    rows: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    layers: list[str]
    methods: list[str]
    results: dict[str, dict[str, np.ndarray]]


def explain_examples(
    models: Mapping[str, tuple[ImageClassifier, Mapping[str, InterpretGAN]]],
    data: DatasetArtifact,
    cfg: IganExplainConfig,
    *,
    seed: int,
    device: torch.device,
) -> IganExplanations:
    """Figures 3/5 data: ``cfg.examples`` test images picked by the ``natural`` model,
    explained by every model of ``models`` (kind -> (f, its GANs by layer))."""
    natural, gans = models["natural"]
    images, index, chunk_size = data.images, data.index, data.chunk
    test_rows = np.flatnonzero(index.split == TEST)
    rows = pick_examples(
        natural, images, index.labels, test_rows, cfg.examples, chunk_size=chunk_size, device=device
    )
    x_np = np.stack([images[int(r)] for r in rows])
    x = torch.as_tensor(x_np, device=device)
    return IganExplanations(
        rows=rows,
        images=x_np,
        labels=index.labels[rows],
        layers=list(gans),
        methods=list(BASELINES),
        results={kind: explain_model(m, g, x, cfg, seed) for kind, (m, g) in models.items()},
    )


def write_explanations(path: Path, found: IganExplanations, params: dict[str, Any]) -> None:
    """Every array of ``found`` as one zarr store at ``path`` (one group per model)."""
    n = len(found.rows)
    root = create_group(
        path,
        {
            "params": params,
            "layers": found.layers,
            "inputs": list(INPUTS),
            "baselines": found.methods,
            "rows": found.rows.tolist(),
        },
    )
    write_array(
        root,
        "images",
        found.images,
        dims=("sample", "channel", "y", "x"),
        chunk_size=n,
        attrs={"range": [0.0, 1.0]},
    )
    write_array(root, "labels", found.labels.astype(np.int64), dims=("sample",), chunk_size=n)
    for kind, out in found.results.items():
        sub = root.create_group(kind)
        for name, arr in out.items():
            write_array(sub, name, arr, dims=DIMS[name], chunk_size=n)
