"""Stage ``attack``: IFGSM (Gulshad et al. Eq. 1), untargeted and targeted, over an eps grid.

Attacks a class-stratified test subset (``attack.max_images``) white-box against the
standard classifier and every adversarially trained model, shard by shard, in this
process or on Dask (``scale`` params, :mod:`advinterp.shards`); a killed run resumes from
the shards it completed. The store holds the attacked clean images once and every
adversarial image relative to them (lossless, ~5x smaller than float32). Store layout in
:mod:`advinterp.data.adversarial` and docs/artifacts.md; metrics: success rate and
accuracy per model, mode and eps.
"""

from __future__ import annotations

import logging

from advinterp.attacks.ifgsm_grid import (
    AttackPlan,
    attack_arrays,
    attack_metrics,
    clean_array,
    clean_shard_setup,
)
from advinterp.config.adv_train import AdvTrainConfig
from advinterp.config.attack import AttackConfig
from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.core import ScaleConfig
from advinterp.data.adversarial import CLEAN, MODES, ChainLayout
from advinterp.data.artifact import load_dataset
from advinterp.models.chain_checkpoints import chain_models
from advinterp.models.checkpoint import load_classifier
from advinterp.shards import dask_session, run_shards, stage_fingerprint
from advinterp.store import fill_shards, resumable_output, write_array, write_json
from stages.stage import Keys, Stage, StageIO, metrics, out, run

log = logging.getLogger("advinterp.stages.attack")

STAGE = Stage(
    name="attack",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 3.1, Eq. 1 - IFGSM (L-inf, pixel space) untargeted and targeted "
    "(seeded random target) over the attack.eps grid on a test subset, white-box against the "
    "standard and every adversarially trained model; success rates.",
    inputs={
        "dataset": "data/dataset.zarr",
        "model": "artifacts/train/model.pt",
        "robust": "artifacts/adv_train/models",
    },
    outputs={
        "out": out("artifacts/attack/adversarial.zarr"),
        "metrics": metrics("artifacts/attack/metrics.json"),
    },
    # adv_train.eps: which robust models of the directory to attack (it may still hold
    # the model of an eps since removed).
    configs=(AttackConfig, Keys(AdvTrainConfig, ("eps",))),
    base=("seed", "device", "num_threads", "chunk_size"),
    runtime=(ScaleConfig,),
)


def main(io: StageIO) -> None:
    cfg, scale, chunk = io.config(AttackConfig), io.config(ScaleConfig), io.base.chunk_size
    data = load_dataset(io.dataset)
    plan = AttackPlan.select(data.index, **cfg.model_dump(), seed=io.base.seed)
    image_size = int(data.images.shape[-1])
    robust_eps = io.config(AdvTrainConfig).eps
    layout = ChainLayout(tuple(chain_models(io.model, io.robust, robust_eps)), MODES, cfg.eps)
    log.info(
        "IFGSM-%d on %d images, eps %s, models %s", cfg.steps, plan.n, cfg.eps, layout.model_keys
    )
    metrics: dict = {}
    fp = stage_fingerprint(
        [io.dataset, io.model, io.robust],
        {"base": io.base.model_dump(mode="json"), "attack": cfg.model_dump(mode="json")},
    )
    # Every model loads before anything is written: a bad checkpoint leaves no partial.
    for entry in layout.models:
        load_classifier(entry.checkpoint, io.device, num_classes=plan.num_classes)
    with dask_session(scale), resumable_output(io.out, fp) as part:
        group = part.group(
            {
                **layout.to_attrs(),
                "steps": cfg.steps,
                "step_size": plan.alphas,
                "dataset": str(io.dataset),
                "params": {"attack": cfg.model_dump(mode="json"), "seed": io.base.seed},
            },
        )
        for name in ("rows", "labels", "targets"):
            write_array(group, name, getattr(plan, name), dims=("sample",), chunk_size=chunk)
        # The reference of every adversarial image array: complete before any is written.
        fill_shards(
            {CLEAN: clean_array(group, plan.n, image_size, chunk)},
            clean_shard_setup(str(io.dataset), plan.rows),
            plan.n,
            chunk,
            desc="clean images",
            markers=part.markers(CLEAN),
        )
        for entry in layout.models:
            mgroup = group.require_group(entry.key)
            mgroup.attrs.update({"train_eps": entry.train_eps, "checkpoint": entry.checkpoint})
            outputs = attack_arrays(mgroup, plan.n, image_size, cfg.eps, plan.alphas, chunk)
            run_shards(
                outputs,
                plan.job(io.dataset, entry.checkpoint, io.device),
                plan.n,
                chunk,
                scale=scale,
                markers=part.markers(entry.key),
                desc=f"attack {entry.key}",
            )
            metrics[entry.key] = attack_metrics(outputs, plan.labels, cfg.eps)
            log.info("%s: %s", entry.key, metrics[entry.key])
    write_json(io.metrics, {"images": plan.n, **metrics})


if __name__ == "__main__":
    run(STAGE, main)
