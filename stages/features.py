"""Stage ``features``: θ(x) and logits of every image in an images store, streamed.

Shard by shard (``base.chunk_size`` images), in this process or fanned out on Dask
(``scale`` params, see :mod:`stages.shards`); a killed run resumes from the shards it
completed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch
import zarr

from advinterp.config import FeaturesConfig, ScaleConfig, load_section
from advinterp.models.checkpoint import load_classifier
from advinterp.models.classifier import ImageClassifier
from advinterp.models.features import features_and_logits
from advinterp.runtime import resolve_device
from advinterp.store import create_array, open_store, resumable_output, sample_chunk_size
from stages.cli import parser, run, setup_base
from stages.shards import Compute, ShardJob, run_shards, stage_fingerprint

log = logging.getLogger("advinterp.stages.features")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--images", type=Path, required=True, help="zarr store with an 'images' array")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    return p


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


def features_compute(model: ImageClassifier, images: Any, batch_size: int, device: torch.device):
    """``compute(slice)`` of the features of ``images[slice]``."""

    def compute(sl: slice) -> dict[str, Any]:
        f, z = features_and_logits(model, images[sl], batch_size, device)
        return {"features": f, "logits": z}

    return compute


def features_shard_setup(
    images: str, array: str, model: str, batch_size: int, device: str
) -> Compute:
    """Shard setup for :func:`stages.shards.run_shards`: load the model, open the images."""
    return features_compute(
        load_classifier(Path(model), torch.device(device)),
        open_store(images, {array: 4})[array],
        batch_size,
        torch.device(device),
    )


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load_section(FeaturesConfig, "features", args.params)
    scale = load_section(ScaleConfig, "scale", args.params)
    device = resolve_device(base.device)
    images = open_store(args.images, {"images": 4})["images"]
    model = load_classifier(args.model, device)
    n, chunk = images.shape[0], sample_chunk_size(images)
    provenance = {
        "images": str(args.images),
        "model": str(args.model),
        "features": cfg.model_dump(),
    }
    fp = stage_fingerprint(
        [args.images, args.model], {"base": base.model_dump(mode="json"), "features": provenance}
    )
    job = ShardJob.of(
        features_shard_setup,
        str(args.images.resolve()),
        "images",
        str(args.model.resolve()),
        cfg.batch_size,
        str(device),
    )
    with resumable_output(args.out, fp) as part:
        group = part.group({"params": provenance})
        outputs = feature_arrays(group, n, model.feature_dim, model.num_classes, chunk)
        run_shards(outputs, job, n, chunk, scale=scale, markers=part.markers(), desc="features")
    log.info("features of %d images -> %s", n, args.out)


if __name__ == "__main__":
    run(main, build)
