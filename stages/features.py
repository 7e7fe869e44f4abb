"""Stage ``features``: θ(x) and logits of every image in an images store, streamed."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from advinterp.config import FeaturesConfig, load_section
from advinterp.models.checkpoint import load_classifier
from advinterp.models.features import features_and_logits
from advinterp.runtime import resolve_device
from advinterp.store import (
    atomic_output,
    create_array,
    create_group,
    fill_shards,
    open_store,
    sample_chunk_size,
)
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.features")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--images", type=Path, required=True, help="zarr store with an 'images' array")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load_section(FeaturesConfig, "features", args.params)
    device = resolve_device(base.device)
    images = open_store(args.images, {"images": 4})["images"]
    model = load_classifier(args.model, device)
    n, chunk = images.shape[0], sample_chunk_size(images)
    provenance = {
        "images": str(args.images),
        "model": str(args.model),
        "features": cfg.model_dump(),
    }
    with atomic_output(args.out) as tmp:
        group = create_group(tmp, {"params": provenance})
        feats = create_array(
            group,
            "features",
            (n, model.feature_dim),
            "float32",
            dims=("sample", "feature"),
            chunk_size=chunk,
            attrs={"meaning": "pooled penultimate layer θ(x)"},
        )
        logits = create_array(
            group,
            "logits",
            (n, model.num_classes),
            "float32",
            dims=("sample", "class"),
            chunk_size=chunk,
        )

        def compute(sl: slice):
            f, z = features_and_logits(model, images[sl], cfg.batch_size, device)
            return {"features": f, "logits": z}

        fill_shards({"features": feats, "logits": logits}, compute, n, chunk, desc="features")
    log.info("features of %d images -> %s", n, args.out)


if __name__ == "__main__":
    run(main, build)
