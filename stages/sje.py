"""Stage ``sje``: structured joint embedding (Gulshad et al. Eqs. 3-6) on every model's θ(x).

One W per model key, trained on that model's clean train-split features against the
class-attribute embeddings φ(y), early-stopped on val accuracy (the paper trains SJE
on the features of the standard and of the adversarially trained network). Then the
predicted attributes θ(x)W, compatibilities and nearest-embedding classes of every
image set in the ``adv_features`` store. SJE is never attacked: the adversarial images
come from the softmax model, so for SJE they are a black-box attack.

Store layout (``--out``, zarr v3; also in docs/artifacts.md)::

    attrs: models, modes, eps, eps_keys, class_names, attribute_names, params
    class_embeddings                     (C,A) float32 φ(y), unit rows
    rows, labels, targets                (n,) copies of the attack store's
    <model>/W                            (D,A) float32
    <model>/clean/{attributes (N,A) f32, scores (N,C) f32, pred (N,) i64}
    <model>/<mode>/<eps_key>/{attributes (n,A), scores (n,C), pred (n,)}
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.config.attributes import SjeConfig
from advinterp.config.core import load
from advinterp.data.adversarial import ChainLayout, finite
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.embedding.sje import (
    class_embeddings,
    compatibility,
    fit_sje,
    normalise_features,
    predict_attributes,
    sje_accuracy,
)
from advinterp.errors import StoreError
from advinterp.store import atomic_output, create_group, open_store, write_array, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.sje")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--features", type=Path, required=True, help="store of stage adv_features")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch CSV")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(SjeConfig, args.params)
    index = read_index(open_dataset(args.dataset))
    feats = open_store(args.features, {"rows": 1, "labels": 1, "targets": 1})
    layout = ChainLayout.from_attrs(feats.attrs, str(args.features))
    layout.require(feats, str(args.features), per_model=("clean/features",), per_set=("features",))
    phi = class_embeddings(index.class_attributes, cfg.center)
    labels = torch.as_tensor(index.labels)
    split = {s: torch.as_tensor(np.flatnonzero(index.split == s)) for s in (TRAIN, VAL, TEST)}
    val = split[VAL] if len(split[VAL]) else split[TRAIN]
    if not len(split[VAL]):
        log.warning("no val split: early stopping on train accuracy")
    chunk = base.chunk_size
    metrics: dict = {}
    history: list[dict] = []

    def write_predictions(sub, x: torch.Tensor, W: torch.Tensor) -> None:
        scores = compatibility(x, W, phi)
        write_array(
            sub,
            "attributes",
            predict_attributes(x, W).numpy(),
            dims=("sample", "attribute"),
            chunk_size=chunk,
            attrs={"meaning": "θ(x)W, in the space of class_embeddings"},
        )
        write_array(
            sub,
            "scores",
            scores.numpy(),
            dims=("sample", "class"),
            chunk_size=chunk,
            attrs={"meaning": "compatibility θ(x)ᵀWφ(y) (Eq. 3)"},
        )
        write_array(
            sub,
            "pred",
            scores.argmax(1).numpy().astype(np.int64),
            dims=("sample",),
            chunk_size=chunk,
        )

    with atomic_output(args.out) as tmp:
        group = create_group(
            tmp,
            {
                **layout.to_attrs(),
                "class_names": index.class_names,
                "attribute_names": index.attribute_names,
                "params": {"sje": cfg.model_dump(mode="json"), "features": str(args.features)},
            },
        )
        C = phi.shape[0]
        write_array(
            group,
            "class_embeddings",
            phi.numpy(),
            dims=("class", "attribute"),
            chunk_size=max(C, 1),
            attrs={"center": cfg.center, "normalisation": "l2 per class"},
        )
        for name in ("rows", "labels", "targets"):
            write_array(group, name, feats[name][:], dims=("sample",), chunk_size=chunk)

        for k, entry in enumerate(layout.models):
            clean = feats[f"{entry.key}/clean/features"]
            if clean.shape[0] != index.num_samples:
                raise StoreError(
                    f"{args.features}: {entry.key}/clean has {clean.shape[0]} rows, "
                    f"the dataset {index.num_samples}"
                )
            x = normalise_features(
                finite(clean[:], f"{args.features}/{entry.key}/clean/features"), cfg.feature_norm
            )
            fit = fit_sje(
                x[split[TRAIN]],
                labels[split[TRAIN]],
                phi,
                val_x=x[val],
                val_labels=labels[val],
                lr=cfg.lr,
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                patience=cfg.patience,
                margin=cfg.margin,
                generator=torch.Generator().manual_seed(base.seed + k),
            )
            test_acc = sje_accuracy(x[split[TEST]], labels[split[TEST]], fit.W, phi)
            metrics[entry.key] = {
                "best_epoch": fit.best_epoch,
                "val_accuracy": fit.best_val_accuracy,
                "test_accuracy": test_acc,
            }
            history += [{"model": entry.key, **h} for h in fit.history]
            log.info(
                "%s: SJE val %.3f (epoch %d), test %.3f",
                entry.key,
                fit.best_val_accuracy,
                fit.best_epoch,
                test_acc,
            )
            mgroup = group.require_group(entry.key)
            write_array(
                mgroup,
                "W",
                fit.W.numpy(),
                dims=("feature", "attribute"),
                chunk_size=int(fit.W.shape[0]),
                attrs={
                    "best_epoch": fit.best_epoch,
                    "val_accuracy": fit.best_val_accuracy,
                    "feature_norm": cfg.feature_norm,
                },
            )
            write_predictions(mgroup.require_group("clean"), x, fit.W)
            for mode in layout.modes:
                for ek in layout.eps_keys:
                    rel = f"{entry.key}/{mode}/{ek}/features"
                    adv = finite(feats[rel][:], f"{args.features}/{rel}")
                    write_predictions(
                        mgroup.require_group(f"{mode}/{ek}"),
                        normalise_features(adv, cfg.feature_norm),
                        fit.W,
                    )
    with atomic_output(args.history) as tmp_csv:
        pd.DataFrame(history).to_csv(tmp_csv, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
