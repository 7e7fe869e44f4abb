"""Stage ``detect``: boxes, parts and attribute scores (Eq. 7) on clean and adversarial images.

Runs the attribute detector on the attacked test subset, clean and perturbed at one eps
(untargeted and targeted, against the standard and the adversarially trained model),
shard by shard in this process or on Dask (``scale`` params; a killed run resumes, see
:mod:`advinterp.detection.sharded`). The perturbations are not aimed at the detector;
its AP/recall per image set shows how much of the attack transfers to it.

Output store (per image set ``clean``, ``standard/<mode>``, ``<at_key>/<mode>``)::

    rows (n,) int64           dataset row of each image (the attack store's rows)
    <set>/box_offsets (n+1,)  boxes of image i: rows box_offsets[i]:box_offsets[i+1]
    <set>/box_xyxy (M,4) f32  fractions of width/height
    <set>/box_part (M,) i64   detected part (object class) index
    <set>/box_score (M,) f32  detection score
    <set>/box_attribute_scores (M,A) f32 in [0,1]
"""

from __future__ import annotations

import logging

import zarr

from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.core import ScaleConfig
from advinterp.config.detect import DetectConfig
from advinterp.data.adversarial import MODES
from advinterp.data.artifact import load_dataset
from advinterp.detection.artifact import write_detections
from advinterp.detection.attribute_rcnn import load_detector
from advinterp.detection.chain_sets import chain_sets
from advinterp.detection.evaluation import detection_summary
from advinterp.detection.sharded import detect_image_set
from advinterp.runtime import precision_attrs
from advinterp.shards import dask_session, stage_fingerprint
from advinterp.store import open_store, resumable_output, sample_chunk_size, write_array, write_json
from stages.stage import Stage, StageIO, metrics, out, run

log = logging.getLogger("advinterp.stages.detect")

STAGE = Stage(
    name="detect",
    method=ATTRIBUTES,
    desc="Eq. 7 on the attacked test subset - detector boxes, parts and attribute scores for "
    "clean images and IFGSM images (untargeted/targeted, standard and AT model) at detect.eps, "
    "ragged per image; detector AP on each image set.",
    inputs={
        "dataset": "data/dataset.zarr",
        "attack": "artifacts/attack/adversarial.zarr",
        "detector": "artifacts/train_detector/detector.pt",
    },
    outputs={
        "out": out("artifacts/detect/detections.zarr"),
        "metrics": metrics("artifacts/detect/metrics.json"),
    },
    configs=(DetectConfig,),
    base=("seed", "device", "num_threads", "precision"),
    runtime=(ScaleConfig,),
)


def main(io: StageIO) -> None:
    cfg, scale = io.config(DetectConfig), io.config(ScaleConfig)
    index = load_dataset(io.dataset).index
    attack = open_store(io.attack, {"rows": 1, "labels": 1})
    chain = chain_sets(io.dataset, io.attack, attack, cfg.eps, cfg.at_model)
    rows = attack["rows"][:]
    spec = load_detector(io.detector, io.device).spec
    gt = index.boxes.subset(rows) if index.boxes is not None else None
    scores: dict[str, dict] = {}
    fp = stage_fingerprint(
        [io.dataset, io.attack, io.detector],
        {"base": io.base.model_dump(mode="json"), "detect": cfg.model_dump(mode="json")},
    )
    with dask_session(scale), resumable_output(io.out, fp) as part:
        group = part.group(
            {
                "sets": chain.names,
                "eps": cfg.eps,
                "eps_key": chain.eps_key,
                "at_model": chain.at_model,
                "modes": list(MODES),
                "part_names": list(spec.class_names),
                "attribute_names": list(spec.attribute_names),
                "params": {
                    "detect": cfg.model_dump(),
                    "detector": str(io.detector),
                    "attack": str(io.attack),
                },
                **precision_attrs(io.base.precision),
            },
        )
        chunk = sample_chunk_size(attack["rows"])
        write_array(group, "rows", rows, dims=("sample",), chunk_size=chunk)
        # Beside the output in its partial directory: kept for a resume, deleted on success.
        scratch = zarr.open_group(str(part.path.parent / "padded.zarr"), mode="a", zarr_format=3)
        for images in chain.sets:
            det = detect_image_set(
                scratch.require_group(images.name),
                images,
                io.detector,
                spec,
                len(rows),
                batch_size=cfg.batch_size,
                device=io.device,
                chunk=chunk,
                scale=scale,
                markers=part.markers(images.name),
                precision=io.base.precision,
            )
            write_detections(group.require_group(images.name), det, chunk)
            scores[images.name] = detection_summary(det, gt, spec.num_classes)
            log.info("%s: %s", images.name, scores[images.name])
    summary = {"eps": cfg.eps, "at_model": chain.at_model, "images": len(rows), **scores}
    write_json(io.metrics, summary)


if __name__ == "__main__":
    run(STAGE, main)
