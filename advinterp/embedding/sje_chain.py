"""SJE on every classifier of the attribute chain (Gulshad et al. Sec. 3.2, Eqs. 3-6).

One W per model key, trained on that model's clean train-split features θ(x) against the
class embeddings φ(y), early-stopped on val accuracy (the paper trains SJE on the
features of the standard and of the adversarially trained network). Then the predicted
attributes θ(x)W, compatibilities and nearest-embedding classes of every image set of
the ``adv_features`` store. SJE is never attacked: the adversarial images come from the
softmax model, so for SJE they are a black-box attack.

:func:`sje_chain` computes; :func:`write_sje_store` writes the store (layout in
docs/artifacts.md)::

    class_embeddings                     (C,A) float32 φ(y), unit rows
    rows, labels, targets                (n,) copies of the attack store's
    <model>/W                            (D,A) float32
    <model>/clean/{attributes (N,A) f32, scores (N,C) f32, pred (N,) i64}
    <model>/<mode>/<eps_key>/{attributes (n,A), scores (n,C), pred (n,)}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from advinterp.data.adversarial import CLEAN, ChainLayout, finite
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.embedding.sje import (
    FeatureNorm,
    SJEFit,
    class_embeddings,
    compatibility,
    fit_sje,
    normalise_features,
    predict_attributes,
    sje_accuracy,
)
from advinterp.errors import StoreError
from advinterp.store import create_group, write_array

log = logging.getLogger(__name__)


@dataclass
class SjeOutputs:
    """SJE's view of one image set.

    Shape:
        attributes: (N, A) float32 θ(x)W; scores: (N, C) float32 Eq. 3 compatibilities;
        pred: (N,) int64 nearest class embedding.
    """

    attributes: np.ndarray
    scores: np.ndarray
    pred: np.ndarray


@dataclass
class ModelSje:
    """One model's fitted SJE, its test accuracy and its outputs per image set."""

    fit: SJEFit
    test_accuracy: float
    sets: dict[str, SjeOutputs] = field(default_factory=dict)


@dataclass
class SjeChain:
    """:func:`sje_chain`'s result: φ(y) and every model's SJE, in layout order."""

    phi: torch.Tensor
    models: dict[str, ModelSje]

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Per model: best epoch, its val accuracy and the test accuracy."""
        return {
            key: {
                "best_epoch": m.fit.best_epoch,
                "val_accuracy": m.fit.best_val_accuracy,
                "test_accuracy": m.test_accuracy,
            }
            for key, m in self.models.items()
        }

    @property
    def history(self) -> list[dict[str, Any]]:
        """One record per (model, epoch): ``model`` and the fit's columns."""
        return [{"model": key, **h} for key, m in self.models.items() for h in m.fit.history]


def sje_outputs(x: torch.Tensor, W: torch.Tensor, phi: torch.Tensor) -> SjeOutputs:
    """Predicted attributes, compatibilities (Eq. 3) and classes of normalised features.

    Shape:
        x: (N, D) float32; W: (D, A); phi: (C, A).
    """
    scores = compatibility(x, W, phi)
    return SjeOutputs(
        predict_attributes(x, W).numpy(), scores.numpy(), scores.argmax(1).numpy().astype(np.int64)
    )


def sje_chain(
    features: Mapping[str, Any],
    layout: ChainLayout,
    labels: np.ndarray,
    split: np.ndarray,
    class_attributes: np.ndarray,
    *,
    center: bool,
    feature_norm: FeatureNorm,
    margin: float,
    lr: float,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    origin: str = "features",
) -> SjeChain:
    """Fit SJE (:func:`advinterp.embedding.sje.fit_sje`) per model and apply it to every set.

    Model ``k`` of the layout trains on its clean features of the train split, with a
    generator seeded ``seed + k``, early-stopped on val (train when there is no val
    split); test accuracy is that of the test split.

    Args:
        features: ``<model>/<image set>/features`` -> array (the ``adv_features`` store:
            a zarr group or a dict of arrays).
        labels, split: every dataset row's class and split code (TRAIN/VAL/TEST).
        class_attributes: per-class attributes, turned into φ(y) by
            :func:`advinterp.embedding.sje.class_embeddings` (``center``).
        origin: names the features store in errors.

    Shape:
        clean features: (N, D) float32 for the N dataset rows; adversarial: (n, D).

    Raises:
        StoreError: clean features of another row count, or NaN/inf features.
    """
    phi = class_embeddings(class_attributes, center)
    y = torch.as_tensor(labels)
    rows = {s: torch.as_tensor(np.flatnonzero(split == s)) for s in (TRAIN, VAL, TEST)}
    val = rows[VAL] if len(rows[VAL]) else rows[TRAIN]
    if not len(rows[VAL]):
        log.warning("no val split: early stopping on train accuracy")
    result = SjeChain(phi, {})
    for k, entry in enumerate(layout.models):
        clean = features[f"{entry.key}/{CLEAN}/features"]
        if clean.shape[0] != len(labels):
            raise StoreError(
                f"{origin}: {entry.key}/clean has {clean.shape[0]} rows, the dataset {len(labels)}"
            )
        x = normalise_features(
            finite(clean[:], f"{origin}/{entry.key}/clean/features"), feature_norm
        )
        fit = fit_sje(
            x[rows[TRAIN]],
            y[rows[TRAIN]],
            phi,
            val_x=x[val],
            val_labels=y[val],
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            margin=margin,
            generator=torch.Generator().manual_seed(seed + k),
        )
        model = ModelSje(fit, sje_accuracy(x[rows[TEST]], y[rows[TEST]], fit.W, phi))
        log.info(
            "%s: SJE val %.3f (epoch %d), test %.3f",
            entry.key,
            fit.best_val_accuracy,
            fit.best_epoch,
            model.test_accuracy,
        )
        model.sets[CLEAN] = sje_outputs(x, fit.W, phi)
        for rel in layout.image_sets()[1:]:
            path = f"{entry.key}/{rel}/features"
            adv = normalise_features(finite(features[path][:], f"{origin}/{path}"), feature_norm)
            model.sets[rel] = sje_outputs(adv, fit.W, phi)
        result.models[entry.key] = model
    return result


def _write_outputs(group: zarr.Group, out: SjeOutputs, chunk: int) -> None:
    for name, values, dims, meaning in (
        (
            "attributes",
            out.attributes,
            ("sample", "attribute"),
            "θ(x)W, in the space of class_embeddings",
        ),
        ("scores", out.scores, ("sample", "class"), "compatibility θ(x)ᵀWφ(y) (Eq. 3)"),
    ):
        write_array(group, name, values, dims=dims, chunk_size=chunk, attrs={"meaning": meaning})
    write_array(group, "pred", out.pred, dims=("sample",), chunk_size=chunk)


def write_sje_store(
    path: Path,
    result: SjeChain,
    *,
    attrs: Mapping[str, Any],
    samples: Mapping[str, np.ndarray],
    center: bool,
    feature_norm: FeatureNorm,
    chunk: int,
) -> None:
    """Write ``result`` as a new zarr store at ``path`` (the layout of the module docstring).

    Args:
        attrs: the store's attributes (layout, class and attribute names, params).
        samples: per-sample arrays copied from the features store (rows, labels, targets).
    """
    group = create_group(path, dict(attrs))
    C = result.phi.shape[0]
    write_array(
        group,
        "class_embeddings",
        result.phi.numpy(),
        dims=("class", "attribute"),
        chunk_size=max(C, 1),
        attrs={"center": center, "normalisation": "l2 per class"},
    )
    for name, values in samples.items():
        write_array(group, name, values, dims=("sample",), chunk_size=chunk)
    for key, model in result.models.items():
        mgroup = group.require_group(key)
        W = model.fit.W
        write_array(
            mgroup,
            "W",
            W.numpy(),
            dims=("feature", "attribute"),
            chunk_size=int(W.shape[0]),
            attrs={
                "best_epoch": model.fit.best_epoch,
                "val_accuracy": model.fit.best_val_accuracy,
                "feature_norm": feature_norm,
            },
        )
        for rel, out in model.sets.items():
            _write_outputs(mgroup.require_group(rel), out, chunk)
