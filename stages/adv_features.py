"""Stage ``adv_features``: θ(x) and logits of every image set the attribute chain analyses.

Clean images (all dataset rows) through every model, and the adversarial images of the
``attack`` store through the model they were crafted against: the paper's x, x̂, x (AT)
and x̂ (AT) (Gulshad et al. Sec. 4, Fig. 3-4). The ``features`` stage's shard
computation, one group ``<model>/<image set>`` each, in this process or on Dask (``scale``
params, :mod:`advinterp.shards`; one cluster serves every group); a killed run resumes
from the shards it completed. Layout in docs/artifacts.md.
"""

from __future__ import annotations

import logging

from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.core import ScaleConfig
from advinterp.config.features import FeaturesConfig
from advinterp.data.adversarial import CLEAN, ChainLayout
from advinterp.data.artifact import open_dataset
from advinterp.models.chain_checkpoints import checked_checkpoints
from advinterp.models.features import feature_arrays, features_shard_setup
from advinterp.runtime import precision_attrs
from advinterp.shards import ShardJob, dask_session, run_shards, stage_fingerprint
from advinterp.store import open_store, resumable_output, write_array
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.adv_features")

STAGE = Stage(
    name="adv_features",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 3.2 - θ(x) and logits of clean images through every model and "
    "of the adversarial images through the model they were crafted against (x, x̂, x (AT), "
    "x̂ (AT)).",
    inputs={
        "dataset": "data/dataset.zarr",
        "attack": "artifacts/attack/adversarial.zarr",
        "model": "artifacts/train/model.pt",
        "robust": "artifacts/adv_train/models",
    },
    outputs={"out": out("artifacts/adv_features/features.zarr")},
    configs=(FeaturesConfig,),
    base=("seed", "device", "num_threads", "chunk_size", "precision"),
    runtime=(ScaleConfig,),
)


def main(io: StageIO) -> None:
    cfg, scale, chunk = io.config(FeaturesConfig), io.config(ScaleConfig), io.base.chunk_size
    clean = open_dataset(io.dataset)["images"]
    attack = open_store(io.attack, {"rows": 1, "labels": 1, "targets": 1})
    layout = ChainLayout.from_attrs(attack.attrs, str(io.attack))
    layout.require(attack, str(io.attack), per_set=("images",))
    models = checked_checkpoints(layout.models, io.model, io.robust, io.device, str(io.attack))
    fp = stage_fingerprint(
        [io.dataset, io.attack, io.model, io.robust],
        {"base": io.base.model_dump(mode="json"), "features": cfg.model_dump(mode="json")},
    )
    with dask_session(scale), resumable_output(io.out, fp) as part:
        group = part.group(
            {
                **layout.to_attrs(),
                "params": {"features": cfg.model_dump(), "attack": str(io.attack)},
                **precision_attrs(io.base.precision),
            }
        )
        for name in ("rows", "labels", "targets"):
            write_array(group, name, attack[name][:], dims=("sample",), chunk_size=chunk)
        for key, (path, dim, classes) in models.items():
            for rel in layout.image_sets():
                # (store holding the set's images, their array path there)
                store, array = (
                    (io.dataset, "images") if rel == CLEAN else (io.attack, f"{key}/{rel}/images")
                )
                n = int((clean if rel == CLEAN else attack[array]).shape[0])
                sub = group.require_group(f"{key}/{rel}")
                sub.attrs.update({"checkpoint": str(path)})
                job = ShardJob.of(
                    features_shard_setup,
                    str(store.resolve()),
                    array,
                    str(path.resolve()),
                    cfg.batch_size,
                    str(io.device),
                    io.base.precision,
                    scale.prefetch and scale.executor == "local",
                )
                run_shards(
                    feature_arrays(sub, n, dim, classes, chunk),
                    job,
                    n,
                    chunk,
                    scale=scale,
                    markers=part.markers(f"{key}/{rel}"),
                    desc=f"{key}/{rel}",
                )
    log.info("features of %d image sets -> %s", len(models) * len(layout.image_sets()), io.out)


if __name__ == "__main__":
    run(STAGE, main)
