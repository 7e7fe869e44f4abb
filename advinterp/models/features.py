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
from advinterp.prefetch import ReadAhead
from advinterp.runtime import Precision, autocast, channels_last, to_device
from advinterp.shards import Compute
from advinterp.store import create_array, decoded, open_store


@torch.no_grad()
def features_and_logits(
    model: ImageClassifier,
    images: np.ndarray,
    batch_size: int,
    device: torch.device,
    precision: Precision = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits of ``images`` in eval mode, ``batch_size`` at a time.

    Args:
        precision: ``base.precision``; bf16 runs the forwards under bfloat16 autocast with
            the weights in channels_last (both restored), fp32 is bitwise the plain forward.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
        returns: features (N, D) float32, logits (N, C) float32.
    """
    was_training = model.training
    model.eval()
    feats, logits = [], []
    try:
        with autocast(device, precision), channels_last(model, precision == "bf16"):
            for s in range(0, len(images), batch_size):
                f = model.features(to_device(images[s : s + batch_size], device))
                # Kept on the device until the end: no host sync between batches on CUDA.
                feats.append(f.float())
                logits.append(model.head(f).float())
    finally:
        model.train(was_training)
    if not feats:
        return (
            np.zeros((0, model.feature_dim), np.float32),
            np.zeros((0, model.num_classes), np.float32),
        )
    return torch.cat(feats).cpu().numpy(), torch.cat(logits).cpu().numpy()


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
    images: str,
    array: str,
    model: str,
    batch_size: int,
    device: str,
    precision: Precision = "fp32",
    prefetch: bool = False,
) -> Compute:
    """Shard setup (:class:`advinterp.shards.ShardJob`): features and logits of ``images[slice]``.

    Every worker process loads the checkpoint ``model`` and opens ``images`` (a zarr
    store, its array ``array``) once, then computes shard after shard.

    Args:
        precision: ``base.precision`` of the forwards (:func:`features_and_logits`).
        prefetch: read the following shard while this one computes (:class:`ReadAhead`);
            the arrays are the same, only the time of the read moves.
    """
    dev = torch.device(device)
    net = load_classifier(Path(model), dev)
    data = decoded(open_store(images, {array: 4}), array, images)  # attack sets: encoded
    read = ReadAhead(data) if prefetch else (lambda sl: np.asarray(data[sl]))

    def compute(sl: slice) -> Mapping[str, Any]:
        f, z = features_and_logits(net, read(sl), batch_size, dev, precision)
        return {"features": f, "logits": z}

    return compute
