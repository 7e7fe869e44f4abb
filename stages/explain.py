"""Stage ``explain``: saliency, guided backprop, LIME and a random baseline (Göpfert et al.).

Explains, for the class the model predicts, the localized adversarial examples (with
their attack regions), full-image IFGSM examples of the ``attack`` stage and the clean
images behind both (:mod:`advinterp.explainers.image_sets`), shard by shard
(``base.chunk_size`` images) in this process or on Dask (``scale`` params, one cluster
for every set); a killed run resumes from the shards it completed.
"""

from __future__ import annotations

import logging

from advinterp.config.core import ScaleConfig
from advinterp.config.explain import ExplainConfig
from advinterp.config.localized import LOCALIZED
from advinterp.data.artifact import open_dataset
from advinterp.explainers.image_sets import (
    explain_shard_setup,
    explanation_arrays,
    gather_sets,
    write_set,
)
from advinterp.explainers.suite import EXPLAINERS
from advinterp.models.checkpoint import load_classifier
from advinterp.shards import ShardJob, dask_session, run_shards, stage_fingerprint
from advinterp.store import open_store, resumable_output
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.explain")

STAGE = Stage(
    name="explain",
    method=LOCALIZED,
    desc="Göpfert et al. Sec. 3 - classic saliency, guided backprop (captum), LIME (fast, same "
    "result as the lime package) and a random baseline for the localized adversarial examples "
    "(with their attack regions), the attack stage's full-image IFGSM examples and the clean "
    "images behind both.",
    inputs={
        "dataset": "data/dataset.zarr",
        "model": "artifacts/train/model.pt",
        "localized": "artifacts/localized_attack/attacks.zarr",
        "attack": "artifacts/attack/adversarial.zarr",
    },
    outputs={"out": out("artifacts/explain/explanations.zarr")},
    configs=(ExplainConfig,),
    base=("seed", "device", "num_threads", "chunk_size", "precision"),
    runtime=(ScaleConfig,),
)


def main(io: StageIO) -> None:
    cfg, scale = io.config(ExplainConfig), io.config(ScaleConfig)
    load_classifier(io.model, io.device)  # a clear error here, not in a worker
    loc = open_store(
        io.localized, {"images": 4, "region": 3, "rows": 1, "labels": 1, "source_rows": 1}
    )
    attack = open_store(io.attack, {"rows": 1}) if cfg.ifgsm_images > 0 else None
    sets = gather_sets(loc, open_dataset(io.dataset), cfg, attack, io.attack)
    provenance = {
        **{k: str(getattr(io, k)) for k in STAGE.inputs},
        "explain": cfg.model_dump(mode="json"),
        "seed": io.base.seed,
    }
    inputs = [io.dataset, io.model, io.localized, io.attack]
    fp = stage_fingerprint(inputs, {"base": io.base.model_dump(mode="json"), "explain": provenance})
    root_attrs = {
        "params": provenance,
        "sets": list(sets),
        "explainers": list(EXPLAINERS),
        "target": loc.attrs.get("target"),
        "lime_segmentation": cfg.lime_segmentation,
        "saliency": cfg.saliency,
    }
    with dask_session(scale), resumable_output(io.out, fp) as part:
        root = part.group(root_attrs)
        for name, arrays in sets.items():
            n, c, h, w = arrays["images"].shape
            log.info("explaining %d %s images", n, name)
            group = write_set(root, name, arrays, io.base.chunk_size)
            outputs = explanation_arrays(group, n, c, h, w, cfg.lime_top, io.base.chunk_size)
            job = ShardJob.of(
                explain_shard_setup,
                str(part.path.resolve()),
                name,
                str(io.model.resolve()),
                cfg.model_dump(mode="json"),
                io.base.seed,
                str(io.device),
                io.base.precision,
            )
            markers = part.markers(name)
            run_shards(outputs, job, n, io.base.chunk_size, scale=scale, markers=markers, desc=name)
        mismatch = int((root["localized/explained"][:] != loc["pred"][:]).sum())
        if mismatch:
            log.warning("%d localized examples are not predicted as their target here", mismatch)
    log.info("explanations of %s -> %s", ", ".join(sets), io.out)


if __name__ == "__main__":
    run(STAGE, main)
