"""Stage ``dataset``: materialise the configured dataset source as one zarr store."""

from __future__ import annotations

import logging

from advinterp.config.core import SHARED
from advinterp.config.dataset import DatasetConfig
from advinterp.data.artifact import write_dataset
from advinterp.data.facts import dataset_facts, expect_facts
from advinterp.data.sources import open_source
from advinterp.store import atomic_output, read_json
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.dataset")

STAGE = Stage(
    name="dataset",
    method=SHARED,
    desc="Materialise the configured dataset (embedded synthetic, CUB, AwA2 or LAD) as one "
    "zarr store of images, labels, splits, attributes and part boxes.",
    inputs={"validated": "artifacts/validate/dataset.json"},
    outputs={"out": out("data/dataset.zarr")},
    configs=(DatasetConfig,),
    optional=("validated",),  # a profile without the validate stage (digits)
    base=("seed", "chunk_size"),
)


def main(io: StageIO) -> None:
    cfg = io.config(DatasetConfig)
    index, images = open_source(cfg, io.base.seed)
    validated = io.optional("validated")
    if validated is not None:
        expect_facts(read_json(validated), dataset_facts(cfg, io.base.seed, index), validated)
    log.info(
        "%s: %d images, %d classes, %d attributes, image size %d",
        index.name,
        index.num_samples,
        len(index.class_names),
        len(index.attribute_names),
        cfg.image_size,
    )
    # An unset dataset.digits is left out, so stores of the other sources keep the
    # attrs they had before the digits source existed.
    dumped = cfg.model_dump(mode="json", exclude={"digits"} if cfg.digits is None else None)
    provenance = {"dataset": dumped, "seed": io.base.seed}
    with atomic_output(io.out) as tmp:
        write_dataset(tmp, index, images, io.base.chunk_size, provenance)


if __name__ == "__main__":
    run(STAGE, main)
