"""Stage ``detect``: boxes, parts and attribute scores (Eq. 7) on clean and adversarial images.

Runs the attribute detector on the images the attribute chain analyses: the attacked
test subset, clean and perturbed at one eps (untargeted and targeted), against the
standard classifier and against the adversarially trained one. The perturbations are
not aimed at the detector; its AP/recall on each image set against the ground-truth
part boxes shows how much of the attack transfers to it.

Output store (per image set ``clean``, ``standard/<mode>``, ``<at_key>/<mode>``)::

    rows (n,) int64           dataset row of each image (the attack store's rows)
    <set>/box_offsets (n+1,)  boxes of image i: rows box_offsets[i]:box_offsets[i+1]
    <set>/box_xyxy (M,4) f32  fractions of width/height
    <set>/box_part (M,) i64   detected part (object class) index
    <set>/box_score (M,) f32  detection score
    <set>/box_attribute_scores (M,A) f32 in [0,1]
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np

from advinterp.config import DetectConfig, load_section
from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.detection.artifact import write_detections
from advinterp.detection.attribute_rcnn import Detections, detect, load_detector
from advinterp.detection.evaluation import evaluate_detections
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.cases import pick_at_model
from advinterp.progress import track
from advinterp.runtime import resolve_device
from advinterp.store import (
    atomic_output,
    create_group,
    open_store,
    sample_chunk_size,
    shard_slices,
    write_array,
    write_json,
)
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.detect")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--attack", type=Path, required=True, help="store of stage attack")
    p.add_argument("--detector", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="detections zarr store")
    p.add_argument("--metrics", type=Path, required=True)
    return p


def chain_sets(layout: ChainLayout, eps: float, at_choice: str) -> tuple[str, list[str]]:
    """The AT model key and the adversarial image groups analysed at ``eps``."""
    if not any(math.isclose(eps, e) for e in layout.eps):
        raise ParamError(f"detect.eps: {eps} is not in the attack's eps grid {list(layout.eps)}")
    try:
        at = pick_at_model(layout.models, eps, at_choice)
    except ValueError as err:
        raise ParamError(f"detect.at_model: {err}") from None
    return at, [f"{m}/{mode}" for m in (STANDARD, at) for mode in MODES]


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load_section(DetectConfig, "detect", args.params)
    device = resolve_device(base.device)
    dataset = open_dataset(args.dataset)
    index = read_index(dataset)
    attack = open_store(args.attack, {"rows": 1, "labels": 1})
    layout = ChainLayout.from_attrs(attack.attrs, str(args.attack))
    at, adv_sets = chain_sets(layout, cfg.eps, cfg.at_model)
    ek = eps_key(cfg.eps)
    for name in adv_sets:
        if f"{name}/{ek}/images" not in attack:
            raise StoreError(f"{args.attack}: missing array '{name}/{ek}/images'; rerun attack")
    rows = attack["rows"][:]
    model = load_detector(args.detector, device)
    num_attr = model.spec.num_attributes

    def run_sets():
        images = dataset["images"]
        parts = [
            detect(model, x, cfg.batch_size, device)
            for _, x in iter_batches(images, rows, cfg.batch_size, sample_chunk_size(images))
        ]
        yield "clean", Detections.concat(parts, num_attr)
        for name in adv_sets:
            arr = attack[f"{name}/{ek}/images"]
            parts = [
                detect(model, arr[sl], cfg.batch_size, device)
                for sl in shard_slices(len(rows), sample_chunk_size(arr))
            ]
            yield name, Detections.concat(parts, num_attr)

    gt = index.boxes.subset(rows) if index.boxes is not None else None
    metrics: dict[str, dict] = {}
    with atomic_output(args.out) as tmp:
        group = create_group(
            tmp,
            {
                "sets": ["clean", *adv_sets],
                "eps": cfg.eps,
                "eps_key": ek,
                "at_model": at,
                "modes": list(MODES),
                "part_names": list(model.spec.class_names),
                "attribute_names": list(model.spec.attribute_names),
                "params": {
                    "detect": cfg.model_dump(),
                    "detector": str(args.detector),
                    "attack": str(args.attack),
                },
            },
        )
        chunk = sample_chunk_size(attack["rows"])
        write_array(group, "rows", rows, dims=("sample",), chunk_size=chunk)
        for name, det in track(run_sets(), total=1 + len(adv_sets), desc="detect", unit="set"):
            write_detections(group.require_group(name), det, chunk)
            entry = {"detections_per_image": float(np.mean(np.diff(det.offsets)))}
            if gt is not None:
                s = evaluate_detections(
                    det, gt.offsets, gt.xyxy, gt.part, gt.attributes, model.spec.num_classes
                )
                entry.update(
                    mAP=s.mean_ap,
                    mean_recall=s.mean_recall,
                    attribute_precision=s.attribute_precision,
                    attribute_recall=s.attribute_recall,
                )
            metrics[name] = {
                k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in entry.items()
            }
            log.info("%s: %s", name, metrics[name])
    write_json(args.metrics, {"eps": cfg.eps, "at_model": at, "images": len(rows), **metrics})


if __name__ == "__main__":
    run(main, build)
