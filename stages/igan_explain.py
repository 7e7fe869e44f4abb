"""Stage ``igan_explain``: InterpretGAN explanations of natural and PGD adversarial
images, layer by layer, beside captum's saliency, integrated gradients and occlusion
(Zheng et al. Figures 3 and 5), for the natural and the robust pooling CNN.

The examples are the first correctly classified test images of distinct classes (by
the natural model). Writes a zarr store of every array drawn and one figure per
model: rows alternate natural / adversarial; above each explanation, f's class on it.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from advinterp.analysis.interpretgan_figures import ExplanationRow, explanation_rows_figure
from advinterp.analysis.robustness import attack_batches, predictions
from advinterp.attacks.pgd import pgd
from advinterp.config.core import load
from advinterp.config.igan import IganExplainConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST
from advinterp.errors import DatasetError
from advinterp.explainers.captum_baselines import BASELINES, baseline_maps
from advinterp.explainers.interpretgan import explain, gans_from_state
from advinterp.models.checkpoint import read_weights_file
from advinterp.models.classifier import ImageClassifier
from advinterp.models.pooling_cnn import latent_fn, pooling_cnn_from_checkpoint
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, create_group, sample_chunk_size, write_array
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.igan_explain")
MODELS = ("natural", "robust")
INPUTS = ("natural", "adversarial")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--models", type=Path, required=True, help="igan_train's output directory")
    p.add_argument("--out", type=Path, required=True, help="zarr store of the explanations")
    p.add_argument(
        "--figures", type=Path, required=True, help="directory for natural.png and robust.png"
    )
    return p


def pick_examples(
    model: ImageClassifier, images, labels: np.ndarray, rows: np.ndarray, k: int, device
) -> np.ndarray:
    """The first ``k`` test rows f classifies correctly, one per class (sorted rows)."""
    chosen: dict[int, int] = {}
    for idx, x in iter_batches(images, rows, 128, sample_chunk_size(images)):
        pred = predictions(model, torch.as_tensor(x, device=device)).cpu().numpy()
        for i, p in zip(idx, pred, strict=True):
            if p == labels[i] and int(labels[i]) not in chosen:
                chosen[int(labels[i])] = int(i)
            if len(chosen) == k:
                return np.sort(np.array(list(chosen.values())))
    if not chosen:
        raise DatasetError("no test image is classified correctly by the natural model")
    return np.sort(np.array(list(chosen.values())))


def explain_model(model, gans, x, cfg: IganExplainConfig, seed: int) -> dict[str, np.ndarray]:
    """Adversarial images, per-layer explanations, their classes and baseline maps."""
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


def rows_of(x: np.ndarray, y: np.ndarray, out: dict[str, np.ndarray]) -> list[ExplanationRow]:
    """Figure rows: for each example its natural row, then its adversarial row."""
    rows = []
    for i in range(len(x)):
        for j, inp in enumerate(INPUTS):
            image = x[i] if inp == "natural" else out["adversarial"][i]
            pred = int(out["predictions"][i, j])
            title = f"y={int(y[i])}, f={pred}" if inp == "natural" else f"f={pred}"
            rows.append(
                ExplanationRow(
                    label=inp,
                    image=image,
                    image_title=title,
                    explanations=out["explanations"][i, j],
                    explanation_titles=[f"{int(c)}" for c in out["explanation_classes"][i, j]],
                    baselines={name: out["baselines"][i, j, b] for b, name in enumerate(BASELINES)},
                )
            )
    return rows


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(IganExplainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    loaded = {}
    for kind in MODELS:
        path, gpath = args.models / f"{kind}.pt", args.models / f"{kind}_gans.pt"
        model = pooling_cnn_from_checkpoint(read_weights_file(path, device), str(path))
        gans = gans_from_state(read_weights_file(gpath), str(gpath))
        loaded[kind] = (model.to(device), {k: g.to(device) for k, g in gans.items()})
    test_rows = np.flatnonzero(index.split == TEST)
    rows = pick_examples(
        loaded["natural"][0], images, index.labels, test_rows, cfg.examples, device
    )
    x_np = np.stack([images[int(r)] for r in rows])
    y = index.labels[rows]
    x = torch.as_tensor(x_np, device=device)

    results = {kind: explain_model(m, g, x, cfg, base.seed) for kind, (m, g) in loaded.items()}
    layers = list(loaded["natural"][1])
    n = len(rows)
    with atomic_output(args.out) as tmp:
        root = create_group(
            tmp,
            {
                "params": cfg.model_dump(mode="json"),
                "layers": layers,
                "inputs": list(INPUTS),
                "baselines": list(BASELINES),
                "rows": rows.tolist(),
            },
        )
        write_array(
            root,
            "images",
            x_np,
            dims=("sample", "channel", "y", "x"),
            chunk_size=n,
            attrs={"range": [0.0, 1.0]},
        )
        write_array(root, "labels", y.astype(np.int64), dims=("sample",), chunk_size=n)
        for kind, out in results.items():
            sub = root.create_group(kind)
            dims = {
                "adversarial": ("sample", "channel", "y", "x"),
                "predictions": ("sample", "input"),
                "explanations": ("sample", "input", "layer", "channel", "y", "x"),
                "explanation_classes": ("sample", "input", "layer"),
                "baselines": ("sample", "input", "method", "y", "x"),
            }
            for name, arr in out.items():
                write_array(sub, name, arr, dims=dims[name], chunk_size=n)
    for kind, out in results.items():
        fig = explanation_rows_figure(
            rows_of(x_np, y, out),
            layers,
            f"InterpretGAN, {kind} model: natural and PGD-{cfg.steps} (eps {cfg.eps}) rows",
            dpi=cfg.figure.dpi,
        )
        with atomic_output(args.figures / f"{kind}.png") as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
    log.info("explanations of %d examples for %s -> %s", n, ", ".join(MODELS), args.out)


if __name__ == "__main__":
    run(main, build)
