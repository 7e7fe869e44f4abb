"""Grounding the attributes that change most, Gulshad et al. Sec. 4.3 (Eqs. 16-17, Figs. 6-7).

Three cases, each a pair of sides (left | right) over its eligible images:

* ``untargeted``, ``targeted``: images correct when clean and wrong when perturbed
  (:func:`~advinterp.grounding.cases.fooled`); left the clean image with Eq. 16's
  selection, right the adversarial one with Eq. 17's;
* ``at``: images the untargeted attack fools on the standard model and adversarial
  training recovers (:func:`~advinterp.grounding.cases.recovered`); left the standard
  model's adversarial image (Eq. 17), right the AT model's (Eq. 16 against the class
  the standard model was fooled into).

On each side the top-k selected attributes are grounded in the attribute detector's
boxes (:mod:`~advinterp.grounding.matching`), scored against the ground-truth part
boxes where the dataset has them, tabulated per image, and a few examples drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import zarr
from matplotlib.figure import Figure

from advinterp.config.ground import GroundConfig
from advinterp.data.adversarial import STANDARD
from advinterp.data.dataset import AttributeIndex
from advinterp.detection.artifact import read_detection_set
from advinterp.detection.attribute_rcnn import Detections
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.cases import example_images, fooled, recovered
from advinterp.grounding.chain_arrays import ChainArrays, read_array, store_origin
from advinterp.grounding.figures import GroundedPanel, grounding_figure
from advinterp.grounding.matching import (
    GroundingCounts,
    box_coordinates,
    ground_images,
    score_images,
)
from advinterp.grounding.selection import Normalize, select_adversarial, select_clean

log = logging.getLogger(__name__)

CASES = ("untargeted", "targeted", "at")
TABLE_COLUMNS = (
    "case",
    "side",
    "row",
    "true",
    "shown_class",
    "selected",
    "grounded",
    "present",
    "correct",
)
EQS = {"clean": "Eq. 16", "adversarial": "Eq. 17", "adversarial_at": "Eq. 16, AT"}
LABELS = {"clean": "clean", "adversarial": "adversarial", "adversarial_at": "adversarial, AT model"}
TITLES = {
    "untargeted": "untargeted IFGSM",
    "targeted": "targeted IFGSM",
    "at": "untargeted IFGSM vs AT",
}


@dataclass(frozen=True)
class Side:
    """One side of a figure row: images, their selection (Eq. 16 or 17), detections.

    Shape:
        image: position in the attacked subset -> (3, H, W) float32 in [0, 1].
        selected, importance: (n, k) attribute indices (most important first), margins.
        shows: (n,) int class the side's prediction argues for.
    """

    name: str
    image: Callable[[int], np.ndarray]
    selected: np.ndarray
    importance: np.ndarray
    det: Detections
    shows: np.ndarray


@dataclass(frozen=True)
class GroundingResult:
    """Metrics per case and side, one table row per (case, side, image), figures per case."""

    metrics: dict[str, Any]
    table: pd.DataFrame
    figures: dict[str, Figure]


def case_sides(
    name: str,
    chain: ChainArrays,
    detections: zarr.Group,
    clean_image: Callable[[int], np.ndarray],
    true: np.ndarray,
    phi: np.ndarray,
    at: str,
    eps_key: str,
    top_k: int,
    normalize: Normalize = "l2",
) -> tuple[np.ndarray, Side, Side]:
    """The eligible images of case ``name`` (in :data:`CASES`) and its two sides.

    ``normalize`` scales the predicted attributes before the Eq. 16/17 margins
    (:func:`~advinterp.grounding.selection.scaled`).

    Shape:
        true: (n,) int true classes of the attacked subset; phi: (C, A) class embeddings.
        returns: eligible (n,) bool, left and right :class:`Side`.
    """

    def adv_side(
        side: str,
        model: str,
        mode: str,
        selection: tuple[np.ndarray, np.ndarray],
        shows: np.ndarray,
    ) -> Side:
        """The side showing ``model``'s ``mode`` adversarial images and their detections."""
        arr = chain.images(model, mode, eps_key)
        dets = read_detection_set(detections, f"{model}/{mode}")
        selected, importance = selection
        return Side(side, lambda i: np.asarray(arr[i]), selected, importance, dets, shows)

    if name == "at":
        adv = chain.pred(STANDARD, "untargeted", eps_key)
        adv_at = chain.pred(at, "untargeted", eps_key)
        eligible = recovered(true, adv, adv_at)
        left_sel = select_adversarial(
            chain.attributes(STANDARD, "untargeted", eps_key), phi, true, top_k, normalize
        )
        right_sel = select_clean(
            chain.attributes(at, "untargeted", eps_key), phi, adv, top_k, normalize
        )
        left = adv_side("adversarial", STANDARD, "untargeted", left_sel, adv)
        right = adv_side("adversarial_at", at, "untargeted", right_sel, adv_at)
        return eligible, left, right
    clean, adv = chain.pred(STANDARD), chain.pred(STANDARD, name, eps_key)
    eligible = fooled(true, clean, adv)
    sel_l, imp_l = select_clean(chain.attributes(STANDARD), phi, adv, top_k, normalize)
    right_sel = select_adversarial(
        chain.attributes(STANDARD, name, eps_key), phi, true, top_k, normalize
    )
    left = Side("clean", clean_image, sel_l, imp_l, read_detection_set(detections, "clean"), true)
    right = adv_side("adversarial", STANDARD, name, right_sel, adv)
    return eligible, left, right


def ground_attributes(
    images: zarr.Array,
    index: AttributeIndex,
    attack: zarr.Group,
    sje: zarr.Group,
    detections: zarr.Group,
    cfg: GroundConfig,
) -> GroundingResult:
    """Select (Eqs. 16-17), ground and score attributes for every case; draw Figures 6-7.

    Args:
        images: the dataset's images (N, 3, H, W) float32 in [0, 1] (examples are read).
        index: the dataset's index (names, part boxes).
        attack, sje, detections: the stores of stages attack, sje and detect.

    Raises:
        ParamError: ``top_k`` exceeds the number of attributes.
        StoreError: the stores disagree on the attacked images or lack an array.
    """
    names = index.attribute_names
    classes = index.class_names
    if cfg.top_k > len(names):
        raise ParamError(
            f"ground.top_k: {cfg.top_k} is more than the {len(names)} "
            f"attributes of {store_origin(images)}"
        )
    rows = read_array(detections, "rows")
    if not np.array_equal(rows, read_array(attack, "rows")):
        raise StoreError(
            f"{store_origin(detections)}: rows differ from {store_origin(attack)}; rerun detect"
        )
    true = read_array(attack, "labels")
    ek, at = str(detections.attrs["eps_key"]), str(detections.attrs["at_model"])
    eps = float(detections.attrs["eps"])  # type: ignore[arg-type]  # a JSON number
    phi = read_array(sje, "class_embeddings")
    chain = ChainArrays(attack, sje, rows, cfg.classifier)

    def clean_image(i: int) -> np.ndarray:
        return np.asarray(images[int(rows[i])])

    gt = index.boxes.subset(rows) if index.boxes is not None else None
    table: list[dict] = []
    metrics: dict[str, Any] = {}
    figures: dict[str, Figure] = {}
    for name in CASES:
        eligible, left, right = case_sides(
            name, chain, detections, clean_image, true, phi, at, ek, cfg.top_k, cfg.normalize
        )
        picked = np.flatnonzero(eligible)
        summary: dict[str, Any] = {"eligible": len(picked), "attacked": len(rows)}
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
        figures[name] = grounding_figure(
            [
                (
                    _panel(left, i, picked, boxes[left.name], true, classes, names),
                    _panel(right, i, picked, boxes[right.name], true, classes, names),
                )
                for i in example_images(picked, true, cfg.examples)
            ],
            f"{TITLES[name]}, eps {eps:g}: {left.name} ({EQS[left.name]}) | "
            f"{right.name} ({EQS[right.name]}); {len(picked)} eligible of {len(rows)}",
            cfg.max_listed,
        )
    return GroundingResult(
        metrics={
            "eps": eps,
            "at_model": at,
            "classifier": cfg.classifier,
            "top_k": cfg.top_k,
            "normalize": cfg.normalize,
            **metrics,
        },
        table=pd.DataFrame(table, columns=list(TABLE_COLUMNS)),
        figures=figures,
    )


def _panel(
    side: Side,
    i: int,
    picked: np.ndarray,
    boxes: np.ndarray,
    true: np.ndarray,
    classes: list[str],
    names: list[str],
) -> GroundedPanel:
    """Image ``i`` of ``side`` with its selected attributes and their grounding boxes.

    Shape:
        picked: (n,) increasing eligible positions, ``i`` among them; boxes: (n, k, 4).
    """
    pos = int(np.searchsorted(picked, i))
    verdict = "correct" if side.shows[i] == true[i] else f"wrong; true {classes[true[i]]}"
    return GroundedPanel(
        image=side.image(i),
        title=f"{LABELS[side.name]}\n{classes[side.shows[i]]} ({verdict})",
        attributes=[names[a] for a in side.selected[i]],
        importance=side.importance[i],
        boxes=boxes[pos],
    )
