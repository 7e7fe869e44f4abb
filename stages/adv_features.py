"""Stage ``adv_features``: θ(x) and logits of every image set the attribute chain analyses.

Clean images (all dataset rows) through every model, and the adversarial images of the
``attack`` store through the model they were crafted against: the paper's x, x̂,
x (AT) and x̂ (AT) (Gulshad et al. Sec. 4, Fig. 3-4). Reuses the ``features`` stage's
shard computation, one nested group per (model, image set), shard by shard
(``base.chunk_size`` images) in this process or fanned out on Dask (``scale`` params, see
:mod:`advinterp.shards`; one cluster serves every group); a killed run resumes from the
shards it completed.

Store layout (``--out``, zarr v3; also in docs/artifacts.md)::

    attrs: models, modes, eps, eps_keys (as in the attack store), params
    rows, labels, targets                   (n,) copies of the attack store's
    <model>/clean/features                  (N,D) float32, all dataset rows
    <model>/clean/logits                    (N,C) float32
    <model>/<mode>/<eps_key>/features       (n,D) float32, attacked subset
    <model>/<mode>/<eps_key>/logits         (n,C) float32
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from advinterp.config.classifier import FeaturesConfig
from advinterp.config.core import ScaleConfig, load
from advinterp.data.adversarial import STANDARD, ChainLayout, model_key
from advinterp.data.artifact import open_dataset
from advinterp.errors import StoreError
from advinterp.models.checkpoint import load_classifier
from advinterp.runtime import resolve_device
from advinterp.store import open_store, resumable_output, write_array
from stages.cli import parser, run, setup_base
from stages.features import feature_arrays, features_shard_setup
from advinterp.shards import ShardJob, dask_session, run_shards, stage_fingerprint

log = logging.getLogger("advinterp.stages.adv_features")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--attack", type=Path, required=True, help="store written by stage attack")
    p.add_argument("--model", type=Path, required=True, help="standard classifier")
    p.add_argument("--robust", type=Path, required=True, help="directory of robust models")
    p.add_argument("--out", type=Path, required=True)
    return p


def checkpoint_of(key: str, standard: Path, robust_dir: Path) -> Path:
    return standard if key == STANDARD else robust_dir / f"{key}.pt"


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(FeaturesConfig, args.params)
    scale = load(ScaleConfig, args.params)
    device = resolve_device(base.device)
    clean = open_dataset(args.dataset)["images"]
    attack = open_store(args.attack, {"rows": 1, "labels": 1, "targets": 1})
    layout = ChainLayout.from_attrs(attack.attrs, str(args.attack))
    layout.require(attack, str(args.attack), per_set=("images",))
    chunk = base.chunk_size
    # Every checkpoint is checked before any shard runs: a bad robust model is one clear
    # error here, not a worker's failure after the other models' shards. Only the output
    # sizes are kept; shard workers load their own copy.
    checkpoints, sizes = {}, {}
    for entry in layout.models:
        if entry.key != model_key(entry.train_eps):
            raise StoreError(f"{args.attack}: unexpected model key {entry.key!r}")
        checkpoints[entry.key] = checkpoint_of(entry.key, args.model, args.robust)
        model = load_classifier(checkpoints[entry.key], device)
        sizes[entry.key] = (model.feature_dim, model.num_classes)
    fp = stage_fingerprint(
        [args.dataset, args.attack, args.model, args.robust],
        {"base": base.model_dump(mode="json"), "features": cfg.model_dump(mode="json")},
    )
    with dask_session(scale), resumable_output(args.out, fp) as part:
        group = part.group(
            {
                **layout.to_attrs(),
                "params": {"features": cfg.model_dump(), "attack": str(args.attack)},
            },
        )
        for name in ("rows", "labels", "targets"):
            write_array(group, name, attack[name][:], dims=("sample",), chunk_size=chunk)
        for entry in layout.models:
            path = checkpoints[entry.key]
            # (image set, store holding its images, their array path there, the array)
            sets = [("clean", args.dataset, "images", clean)]
            sets += [
                (rel, args.attack, f"{entry.key}/{rel}/images", attack[f"{entry.key}/{rel}/images"])
                for rel in (f"{mode}/{ek}" for mode in layout.modes for ek in layout.eps_keys)
            ]
            for rel, store, array, images in sets:
                n = int(images.shape[0])
                sub = group.require_group(f"{entry.key}/{rel}")
                sub.attrs.update({"checkpoint": str(path)})
                outputs = feature_arrays(sub, n, *sizes[entry.key], chunk)
                job = ShardJob.of(
                    features_shard_setup,
                    str(store.resolve()),
                    array,
                    str(path.resolve()),
                    cfg.batch_size,
                    str(device),
                )
                run_shards(
                    outputs,
                    job,
                    n,
                    chunk,
                    scale=scale,
                    markers=part.markers(f"{entry.key}/{rel}"),
                    desc=f"{entry.key}/{rel}",
                )
    log.info(
        "features of %d image sets -> %s", len(layout.models) * (1 + 2 * len(layout.eps)), args.out
    )


if __name__ == "__main__":
    run(main, build)
