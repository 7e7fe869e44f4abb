"""Stage ``dataset``: materialise the configured dataset source as one zarr store."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from advinterp.config import DatasetConfig, load_section
from advinterp.data.artifact import write_dataset
from advinterp.data.sources import open_source
from advinterp.store import atomic_output
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.dataset")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--out", type=Path, required=True, help="dataset zarr store to write")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load_section(DatasetConfig, "dataset", args.params)
    index, images = open_source(cfg, base.seed)
    log.info(
        "%s: %d images, %d classes, %d attributes, image size %d",
        index.name,
        index.num_samples,
        len(index.class_names),
        len(index.attribute_names),
        cfg.image_size,
    )
    provenance = {"dataset": cfg.model_dump(mode="json"), "seed": base.seed}
    with atomic_output(args.out) as tmp:
        write_dataset(tmp, index, images, base.chunk_size, provenance)


if __name__ == "__main__":
    run(main, build)
