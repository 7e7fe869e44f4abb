"""Stage ``ground``: ground the attributes that change most (Eqs. 16-17) in detector boxes.

For images correct when clean and wrong when perturbed (untargeted, targeted) and for
images that adversarial training recovers (AT), select the top-k attributes of SJE's
predictions by Eq. 16 (clean / AT) or Eq. 17 (adversarial), match them with the
attribute detector's boxes, draw Figures 6-7 and score the grounding against the
ground-truth part boxes (precision/recall at an IoU threshold), clean vs adversarial.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advinterp.config.attributes import GroundConfig
from advinterp.config.core import load
from advinterp.data.adversarial import STANDARD, finite
from advinterp.data.artifact import open_dataset, read_index
from advinterp.detection.artifact import read_detections
from advinterp.detection.attribute_rcnn import Detections
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.cases import fooled, recovered
from advinterp.grounding.figures import GroundedPanel, grounding_figure
from advinterp.grounding.matching import (
    GroundingCounts,
    box_coordinates,
    ground_images,
    score_images,
)
from advinterp.grounding.selection import select_adversarial, select_clean
from advinterp.store import atomic_output, open_store, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.ground")
CASES = ("untargeted", "targeted", "at")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--attack", type=Path, required=True, help="store of stage attack")
    p.add_argument("--sje", type=Path, required=True, help="store of stage sje")
    p.add_argument("--detections", type=Path, required=True, help="store of stage detect")
    p.add_argument("--figures", type=Path, required=True, help="directory for figure6_<case>.png")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True, help="per-image grounding CSV")
    return p


@dataclass
class Side:
    """One side of a figure row: images, their selection (Eq. 16 or 17), detections."""

    name: str
    image: Callable[[int], np.ndarray]  # position in the attack subset -> (3, H, W)
    selected: np.ndarray  # (n, k) attribute indices, most important first
    importance: np.ndarray  # (n, k)
    det: Detections
    shows: np.ndarray  # (n,) class the side's prediction argues for


def _need(group, path: str, origin: Path) -> np.ndarray:
    if path not in group:
        raise StoreError(f"{origin}: missing '{path}' (rerun the stage that makes it)")
    values = group[path][:]
    return finite(values, f"{origin}/{path}") if values.dtype.kind == "f" else values


def main(args: argparse.Namespace) -> None:
    setup_base(args.params)
    cfg = load(GroundConfig, args.params)
    dataset = open_dataset(args.dataset)
    index = read_index(dataset)
    if cfg.top_k > len(index.attribute_names):
        raise ParamError(
            f"ground.top_k: {cfg.top_k} is more than the {len(index.attribute_names)} "
            f"attributes of {args.dataset}"
        )
    attack = open_store(args.attack, {"rows": 1, "labels": 1})
    sje = open_store(args.sje, {"class_embeddings": 2})
    dets = open_store(args.detections, {"rows": 1})
    rows = dets["rows"][:]
    if not np.array_equal(rows, attack["rows"][:]):
        raise StoreError(f"{args.detections}: rows differ from {args.attack}; rerun detect")
    true = attack["labels"][:]
    ek, at = str(dets.attrs["eps_key"]), str(dets.attrs["at_model"])
    phi = sje["class_embeddings"][:]
    names = index.attribute_names
    classes = index.class_names

    def preds(model: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
        if cfg.classifier == "sje":
            clean = _need(sje, f"{model}/clean/pred", args.sje)[rows]
            return clean, _need(sje, f"{model}/{mode}/{ek}/pred", args.sje)
        return (
            _need(attack, f"{model}/clean_pred", args.attack),
            _need(attack, f"{model}/{mode}/{ek}/pred", args.attack),
        )

    def attributes(model: str, mode: str | None) -> np.ndarray:
        if mode is None:
            return _need(sje, f"{model}/clean/attributes", args.sje)[rows]
        return _need(sje, f"{model}/{mode}/{ek}/attributes", args.sje)

    def adv_image(model: str, mode: str) -> Callable[[int], np.ndarray]:
        arr = attack[f"{model}/{mode}/{ek}/images"]
        return lambda i: arr[i]

    def clean_image(i: int) -> np.ndarray:
        return dataset["images"][int(rows[i])]

    def detections(name: str) -> Detections:
        if name not in dets:
            raise StoreError(f"{args.detections}: no image set '{name}'; rerun detect")
        return read_detections(dets[name], f"{args.detections}/{name}")

    def case(name: str) -> tuple[np.ndarray, Side, Side]:
        if name == "at":
            _, adv = preds(STANDARD, "untargeted")
            _, adv_at = preds(at, "untargeted")
            eligible = recovered(true, adv, adv_at)
            sel_l, imp_l = select_adversarial(
                attributes(STANDARD, "untargeted"), phi, true, cfg.top_k
            )
            sel_r, imp_r = select_clean(attributes(at, "untargeted"), phi, adv, cfg.top_k)
            left = Side(
                "adversarial",
                adv_image(STANDARD, "untargeted"),
                sel_l,
                imp_l,
                detections(f"{STANDARD}/untargeted"),
                adv,
            )
            right = Side(
                "adversarial_at",
                adv_image(at, "untargeted"),
                sel_r,
                imp_r,
                detections(f"{at}/untargeted"),
                adv_at,
            )
            return eligible, left, right
        clean, adv = preds(STANDARD, name)
        eligible = fooled(true, clean, adv)
        sel_l, imp_l = select_clean(attributes(STANDARD, None), phi, adv, cfg.top_k)
        sel_r, imp_r = select_adversarial(attributes(STANDARD, name), phi, true, cfg.top_k)
        left = Side("clean", clean_image, sel_l, imp_l, detections("clean"), true)
        right = Side(
            "adversarial",
            adv_image(STANDARD, name),
            sel_r,
            imp_r,
            detections(f"{STANDARD}/{name}"),
            adv,
        )
        return eligible, left, right

    gt = index.boxes.subset(rows) if index.boxes is not None else None
    table: list[dict] = []
    metrics: dict[str, dict] = {}
    figures = {}  # written with the other outputs, once every case is computed
    for name in CASES:
        eligible, left, right = case(name)
        picked = np.flatnonzero(eligible)
        summary: dict[str, object] = {"eligible": len(picked), "attacked": len(rows)}
        boxes: dict[str, np.ndarray] = {}
        for side in (left, right):
            sel = side.selected[picked]
            box_rows = ground_images(sel, side.det, picked, cfg.attribute_thresh, cfg.box_thresh)
            boxes[side.name] = box_coordinates(box_rows, side.det)
            counts = score_images(sel, box_rows, side.det, gt, picked, cfg.iou_thresh)
            summary[side.name] = sum(counts, GroundingCounts()).summary()
            if gt is None:  # nothing to score against: only the grounded fraction means something
                summary[side.name].update(precision=None, recall=None, present_fraction=None)
            table += [
                {
                    "case": name,
                    "side": side.name,
                    "row": int(rows[i]),
                    "true": int(true[i]),
                    "shown_class": int(side.shows[i]),
                    **c.__dict__,
                }
                for i, c in zip(picked, counts, strict=True)
            ]
        metrics[name] = summary
        log.info("%s: %s", name, summary)
        fig = grounding_figure(
            [
                tuple(
                    _panel(
                        side,
                        i,
                        int(np.searchsorted(picked, i)),
                        boxes[side.name],
                        true,
                        classes,
                        names,
                    )
                    for side in (left, right)
                )
                for i in _examples(picked, true, cfg.examples)
            ],
            f"{TITLES[name]}, eps {dets.attrs['eps']:g}: {left.name} ({EQS[left.name]}) | "
            f"{right.name} ({EQS[right.name]}); {len(picked)} eligible of {len(rows)}",
            cfg.max_listed,
        )
        figures[name] = fig
    for name, fig in figures.items():
        with atomic_output(args.figures / f"figure6_{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=cfg.figure.dpi)
    with atomic_output(args.table) as tmp:
        cols = [
            "case",
            "side",
            "row",
            "true",
            "shown_class",
            "selected",
            "grounded",
            "present",
            "correct",
        ]
        pd.DataFrame(table, columns=cols).to_csv(tmp, index=False)
    write_json(
        args.metrics,
        {
            "eps": float(dets.attrs["eps"]),
            "at_model": at,
            "classifier": cfg.classifier,
            "top_k": cfg.top_k,
            **metrics,
        },
    )


EQS = {"clean": "Eq. 16", "adversarial": "Eq. 17", "adversarial_at": "Eq. 16, AT"}
LABELS = {"clean": "clean", "adversarial": "adversarial", "adversarial_at": "adversarial, AT model"}
TITLES = {
    "untargeted": "untargeted IFGSM",
    "targeted": "targeted IFGSM",
    "at": "untargeted IFGSM vs AT",
}


def _examples(picked: np.ndarray, true: np.ndarray, count: int) -> list[int]:
    """The first eligible images, one per true class while classes last."""
    chosen: list[int] = []
    for i in picked:
        if int(true[i]) not in {int(true[j]) for j in chosen}:
            chosen.append(int(i))
        if len(chosen) == count:
            return chosen
    rest = [int(i) for i in picked if int(i) not in chosen]
    return chosen + rest[: count - len(chosen)]


def _panel(
    side: Side,
    i: int,
    pos: int,
    boxes: np.ndarray,
    true: np.ndarray,
    classes: list[str],
    names: list[str],
) -> GroundedPanel:
    verdict = "correct" if side.shows[i] == true[i] else f"wrong; true {classes[true[i]]}"
    return GroundedPanel(
        image=side.image(i),
        title=f"{LABELS[side.name]}\n{classes[side.shows[i]]} ({verdict})",
        attributes=[names[a] for a in side.selected[i]],
        importance=side.importance[i],
        boxes=boxes[pos],
    )


if __name__ == "__main__":
    run(main, build)
