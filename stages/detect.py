"""Stage ``detect``: boxes, parts and attribute scores (Eq. 7) on clean and adversarial images.

Runs the attribute detector on the images the attribute chain analyses: the attacked
test subset, clean and perturbed at one eps (untargeted and targeted), against the
standard classifier and against the adversarially trained one. The perturbations are
not aimed at the detector; its AP/recall on each image set against the ground-truth
part boxes shows how much of the attack transfers to it.

The detector runs shard by shard (the attack store's shards), in this process or fanned
out on Dask (``scale`` params, see :mod:`advinterp.shards`; one cluster serves every set); a
killed run resumes from the shards it completed. Workers write each image's boxes padded
to the detector's ``detections_per_img`` cap, a per-image layout whose shards line up
with the images', into a scratch store beside the output; once a set is complete it is
compacted into the ragged layout below, which is what readers see.

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
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import zarr

from advinterp.config.attributes import DetectConfig
from advinterp.config.core import ScaleConfig, load
from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.detection.artifact import write_detections
from advinterp.detection.attribute_rcnn import Detections, detect, load_detector
from advinterp.detection.evaluation import evaluate_detections
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.cases import pick_at_model
from advinterp.runtime import resolve_device
from advinterp.store import (
    create_array,
    open_store,
    resumable_output,
    sample_chunk_size,
    write_array,
    write_json,
)
from stages.cli import parser, run, setup_base
from advinterp.shards import Compute, ShardJob, dask_session, run_shards, stage_fingerprint

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


def padded_arrays(
    group: zarr.Group, n: int, cap: int, num_attributes: int, chunk: int
) -> dict[str, zarr.Array]:
    """Per-image detections padded to ``cap`` boxes (create, or reopen when resuming).

    ``count`` (n,) int64 boxes of each image; ``xyxy`` (n, cap, 4), ``part`` (n, cap),
    ``score`` (n, cap), ``attribute_scores`` (n, cap, A): box j < count[i] of image i.
    """
    layout = {
        "count": ((), "int64", ("sample",)),
        "xyxy": ((cap, 4), "float32", ("sample", "box", "coord")),
        "part": ((cap,), "int64", ("sample", "box")),
        "score": ((cap,), "float32", ("sample", "box")),
        "attribute_scores": ((cap, num_attributes), "float32", ("sample", "box", "attribute")),
    }
    return {
        key: create_array(group, key, (n, *rest), dtype, dims=dims, chunk_size=chunk)
        for key, (rest, dtype, dims) in layout.items()
    }


def pad(det: Detections, cap: int) -> dict[str, np.ndarray]:
    """``det`` in the layout of :func:`padded_arrays` (padding zero)."""
    counts = np.diff(det.offsets)
    n = det.num_images
    if n and counts.max() > cap:
        raise RuntimeError(f"bug: {counts.max()} boxes on one image, detections_per_img={cap}")
    keep = np.arange(cap)[None, :] < counts[:, None]  # (n, cap): row-major = ragged order
    out = {"count": counts.astype(np.int64)}
    for key in ("xyxy", "part", "score", "attribute_scores"):
        ragged = getattr(det, key)
        out[key] = np.zeros((n, cap, *ragged.shape[1:]), ragged.dtype)
        out[key][keep] = ragged
    return out


def unpad(padded: Mapping[str, np.ndarray]) -> Detections:
    """The ragged :class:`Detections` of :func:`pad`'s layout."""
    counts = np.asarray(padded["count"], np.int64)
    keep = np.arange(padded["part"].shape[1])[None, :] < counts[:, None]
    return Detections(
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        xyxy=padded["xyxy"][keep],
        part=padded["part"][keep],
        score=padded["score"][keep],
        attribute_scores=padded["attribute_scores"][keep],
    )


def detect_shard_setup(
    detector: str,
    store: str,
    array: str,
    rows: np.ndarray | None,
    batch_size: int,
    device: str,
) -> Compute:
    """Shard setup for :func:`advinterp.shards.run_shards`: padded detections of a shard.

    Args:
        store, array: the images; sample ``i`` of the set is ``array[rows[i]]``, or
            ``array[i]`` when ``rows`` is None.
    """
    dev = torch.device(device)
    model = load_detector(Path(detector), dev)
    images = open_store(store)[array]
    cap = model.spec.detections_per_img

    def compute(sl: slice) -> dict[str, np.ndarray]:
        if rows is None:
            x = images[sl]
        else:
            batches = iter_batches(images, rows[sl], len(rows[sl]), sample_chunk_size(images))
            x = np.concatenate([b for _, b in batches])
        return pad(detect(model, x, batch_size, dev), cap)

    return compute


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(DetectConfig, args.params)
    scale = load(ScaleConfig, args.params)
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
    spec = model.spec
    # (set, images store, array there, dataset rows or None = the attack store's order)
    sets = [("clean", args.dataset, "images", rows)]
    sets += [(name, args.attack, f"{name}/{ek}/images", None) for name in adv_sets]

    gt = index.boxes.subset(rows) if index.boxes is not None else None
    metrics: dict[str, dict] = {}
    fp = stage_fingerprint(
        [args.dataset, args.attack, args.detector],
        {"base": base.model_dump(mode="json"), "detect": cfg.model_dump(mode="json")},
    )
    with dask_session(scale), resumable_output(args.out, fp) as part:
        group = part.group(
            {
                "sets": ["clean", *adv_sets],
                "eps": cfg.eps,
                "eps_key": ek,
                "at_model": at,
                "modes": list(MODES),
                "part_names": list(spec.class_names),
                "attribute_names": list(spec.attribute_names),
                "params": {
                    "detect": cfg.model_dump(),
                    "detector": str(args.detector),
                    "attack": str(args.attack),
                },
            },
        )
        chunk = sample_chunk_size(attack["rows"])
        write_array(group, "rows", rows, dims=("sample",), chunk_size=chunk)
        # Beside the output in its partial directory: kept for a resume, deleted on success.
        scratch = zarr.open_group(str(part.path.parent / "padded.zarr"), mode="a", zarr_format=3)
        for name, store, array, sel in sets:
            padded = padded_arrays(
                scratch.require_group(name),
                len(rows),
                spec.detections_per_img,
                spec.num_attributes,
                chunk,
            )
            job = ShardJob.of(
                detect_shard_setup,
                str(args.detector.resolve()),
                str(store.resolve()),
                array,
                sel,
                cfg.batch_size,
                str(device),
            )
            run_shards(
                padded,
                job,
                len(rows),
                chunk,
                scale=scale,
                markers=part.markers(name),
                desc=f"detect {name}",
            )
            det = unpad({key: arr[:] for key, arr in padded.items()})
            write_detections(group.require_group(name), det, chunk)
            entry = {"detections_per_image": float(np.mean(np.diff(det.offsets)))}
            if gt is not None:
                s = evaluate_detections(
                    det, gt.offsets, gt.xyxy, gt.part, gt.attributes, spec.num_classes
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
