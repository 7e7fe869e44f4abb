"""Stage ``features``: θ(x) and logits of every image in an images store, streamed.

Shard by shard (``base.chunk_size`` images), in this process or fanned out on Dask
(``scale`` params, see :mod:`advinterp.shards`); a killed run resumes from the shards it
completed. In this process the next shard's images are read while the current one
computes (``scale.prefetch``); ``base.precision: bf16`` runs the forwards under bfloat16
autocast.
"""

from __future__ import annotations

import logging

from advinterp.config.core import SHARED, ScaleConfig
from advinterp.config.features import FeaturesConfig
from advinterp.models.checkpoint import load_classifier
from advinterp.models.features import feature_arrays, features_shard_setup
from advinterp.runtime import precision_attrs
from advinterp.shards import ShardJob, run_shards, stage_fingerprint
from advinterp.store import open_store, resumable_output, sample_chunk_size
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.features")

STAGE = Stage(
    name="features",
    method=SHARED,
    desc="Pooled penultimate-layer features θ(x) (Gulshad et al. Sec. 3.2) and logits of "
    "every dataset image, streamed shard by shard.",
    inputs={"images": "data/dataset.zarr", "model": "artifacts/train/model.pt"},
    outputs={"out": out("artifacts/features/clean.zarr")},
    configs=(FeaturesConfig,),
    base=("seed", "device", "num_threads", "precision"),
    runtime=(ScaleConfig,),
)


def main(io: StageIO) -> None:
    cfg, scale = io.config(FeaturesConfig), io.config(ScaleConfig)
    images = open_store(io.images, {"images": 4})["images"]
    model = load_classifier(io.model, io.device)
    n, chunk = images.shape[0], sample_chunk_size(images)
    provenance = {"images": str(io.images), "model": str(io.model), "features": cfg.model_dump()}
    fp = stage_fingerprint(
        [io.images, io.model], {"base": io.base.model_dump(mode="json"), "features": provenance}
    )
    job = ShardJob.of(
        features_shard_setup,
        str(io.images.resolve()),
        "images",
        str(io.model.resolve()),
        cfg.batch_size,
        str(io.device),
        io.base.precision,
        scale.prefetch and scale.executor == "local",
    )
    with resumable_output(io.out, fp) as part:
        group = part.group({"params": provenance, **precision_attrs(io.base.precision)})
        outputs = feature_arrays(group, n, model.feature_dim, model.num_classes, chunk)
        run_shards(
            outputs,
            job,
            n,
            chunk,
            scale=scale,
            markers=part.markers(),
            desc="features",
        )
    log.info("features of %d images -> %s", n, io.out)


if __name__ == "__main__":
    run(STAGE, main)
