"""θ(x): pooled penultimate-layer features (Gulshad et al., Sec. 3.2) and logits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from advinterp.models.checkpoint import load_classifier
from advinterp.models.classifier import ImageClassifier
from advinterp.shards import Compute
from advinterp.store import create_array, open_store, require_array


@torch.no_grad()
def features_and_logits(
    model: ImageClassifier, images: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of ``images`` in eval mode, ``batch_size`` at a time.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
        returns: features (N, D) float32, logits (N, C) float32.
    """
    was_training = model.training
    model.eval()
    try:
        feats, logits = [], []
        for s in range(0, len(images), batch_size):
            x = torch.as_tensor(images[s : s + batch_size], device=device)
            f = model.features(x)
            feats.append(f.cpu())
            logits.append(model.head(f).cpu())
    finally:
        model.train(was_training)
    if not feats:
        return (
            np.zeros((0, model.feature_dim), np.float32),
            np.zeros((0, model.num_classes), np.float32),
        )
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()


def feature_arrays(
    group: zarr.Group, n: int, feature_dim: int, num_classes: int, chunk: int
) -> dict[str, zarr.Array]:
    """Create (or reopen, when resuming) ``features`` (N, D) and ``logits`` (N, C)."""
    return {
        "features": create_array(
            group,
            "features",
            (n, feature_dim),
            "float32",
            dims=("sample", "feature"),
            chunk_size=chunk,
            attrs={"meaning": "pooled penultimate layer θ(x)"},
        ),
        "logits": create_array(
            group, "logits", (n, num_classes), "float32", dims=("sample", "class"), chunk_size=chunk
        ),
    }


def features_shard_setup(
    images: str, array: str, model: str, batch_size: int, device: str
) -> Compute:
    """Shard setup (:class:`advinterp.shards.ShardJob`): features and logits of ``images[slice]``.

    Every worker process loads the checkpoint ``model`` and opens ``images`` (a zarr
    store, its array ``array``) once, then computes shard after shard.
    """
    net = load_classifier(Path(model), torch.device(device))
    data = require_array(open_store(images, {array: 4}), array, images)

    def compute(sl: slice) -> Mapping[str, Any]:
        f, z = features_and_logits(net, np.asarray(data[sl]), batch_size, torch.device(device))
        return {"features": f, "logits": z}

    return compute
