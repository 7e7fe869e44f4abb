"""Grounding selected attributes in detector boxes, and scoring it against part boxes.

Gulshad et al. Sec. 3.2: the attributes SJE selects (``A^q_{x_n,y_n}``, ``A^p_{x̂_n,y}``,
Eqs. 16-17) are looked up among the attributes the detector predicts for each box
(``A^j``, Eq. 7); where they match, the attribute is drawn in that box, otherwise it
"could not be grounded". Here a box carries attribute ``a`` when its attribute score
is at least ``attribute_thresh`` (and the box's detection score at least
``box_thresh``); an attribute is grounded in the box that carries it with the highest
attribute score.

Beyond the paper (which had no part boxes): where ground-truth part boxes with
per-box attributes exist, a grounding ``(a, box)`` is *correct* when some
ground-truth box labelled with ``a`` overlaps it with IoU >= ``iou_thresh``;
precision = correct / grounded, recall = correct / selected attributes that are
present in the image at all (carried by some ground-truth box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from advinterp.data.dataset import PartBoxes
from advinterp.detection.attribute_rcnn import Detections


def ground(
    selected: np.ndarray,
    attribute_scores: np.ndarray,
    box_scores: np.ndarray,
    attribute_thresh: float,
    box_thresh: float = 0.0,
) -> np.ndarray:
    """The detected box grounding each selected attribute of one image.

    Shape:
        selected: (k,) int attribute indices (e.g. one row of Eq. 16/17's selection).
        attribute_scores: (K, A) float in [0, 1], per detected box.
        box_scores: (K,) float detection scores.
        returns: (k,) int64 box index in [0, K), -1 where the attribute is not grounded.
    """
    selected = np.asarray(selected, dtype=np.int64)
    out = np.full(len(selected), -1, dtype=np.int64)
    if len(box_scores) == 0 or len(selected) == 0:
        return out
    s = np.asarray(attribute_scores, dtype=np.float64)[:, selected]  # (K, k)
    ok = (s >= attribute_thresh) & (np.asarray(box_scores)[:, None] >= box_thresh)
    s = np.where(ok, s, -np.inf)
    best = np.argmax(s, axis=0)
    found = np.isfinite(s[best, np.arange(len(selected))])
    out[found] = best[found]
    return out


@dataclass
class GroundingCounts:
    """Micro-averaged grounding counts over images (add them up with ``+``).

    Attributes:
        selected: attributes selected for grounding.
        grounded: selected attributes matched to some detected box.
        present: selected attributes carried by some ground-truth box of the image.
        correct: grounded attributes whose box overlaps a ground-truth box carrying
            that attribute with IoU >= the threshold.
    """

    selected: int = 0
    grounded: int = 0
    present: int = 0
    correct: int = 0

    def __add__(self, other: GroundingCounts) -> GroundingCounts:
        return GroundingCounts(
            self.selected + other.selected,
            self.grounded + other.grounded,
            self.present + other.present,
            self.correct + other.correct,
        )

    def summary(self) -> dict[str, float | int | None]:
        """Counts plus grounded fraction, present fraction, precision and recall."""

        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        return {
            **self.__dict__,
            "grounded_fraction": ratio(self.grounded, self.selected),
            "present_fraction": ratio(self.present, self.selected),
            "precision": ratio(self.correct, self.grounded),
            "recall": ratio(self.correct, self.present),
        }


def score_grounding(
    selected: np.ndarray,
    box_index: np.ndarray,
    det_xyxy: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_attributes: np.ndarray,
    iou_thresh: float = 0.5,
) -> GroundingCounts:
    """Score one image's grounding against its ground-truth part boxes.

    Shape:
        selected: (k,) attribute indices; box_index: (k,) from :func:`ground`;
        det_xyxy: (K, 4); gt_xyxy: (G, 4) in the same units;
        gt_attributes: (G, A) {0, 1} attributes visible in each ground-truth box.
    """
    selected = np.asarray(selected, dtype=np.int64)
    box_index = np.asarray(box_index, dtype=np.int64)
    gt_attributes = np.asarray(gt_attributes).astype(bool)
    carriers = gt_attributes[:, selected]  # (G, k): gt box g shows attribute selected[i]
    present = carriers.any(axis=0)
    grounded = box_index >= 0
    correct = 0
    if grounded.any() and len(gt_xyxy):
        iou = box_iou(
            torch.as_tensor(np.asarray(det_xyxy, np.float64)[box_index[grounded]]).reshape(-1, 4),
            torch.as_tensor(np.asarray(gt_xyxy, np.float64)).reshape(-1, 4),
        ).numpy()  # (grounded, G)
        hit = (iou >= iou_thresh) & carriers[:, grounded].T
        correct = int(hit.any(axis=1).sum())
    return GroundingCounts(
        selected=len(selected),
        grounded=int(grounded.sum()),
        present=int(present.sum()),
        correct=correct,
    )


def ground_images(
    selected: np.ndarray,
    det: Detections,
    images: np.ndarray,
    attribute_thresh: float,
    box_thresh: float = 0.0,
) -> np.ndarray:
    """:func:`ground` for many images at once.

    Shape:
        selected: (n, k) attribute indices of images ``images`` (n,) (indices into det).
        returns: (n, k) int64 row of ``det``'s boxes grounding each attribute, -1 if none.
    """
    out = np.full(np.shape(selected), -1, dtype=np.int64)
    for r, i in enumerate(np.asarray(images, dtype=np.int64)):
        s = det.of(int(i))
        local = ground(
            selected[r], det.attribute_scores[s], det.score[s], attribute_thresh, box_thresh
        )
        out[r] = np.where(local >= 0, local + s.start, -1)
    return out


def box_coordinates(box_rows: np.ndarray, det: Detections) -> np.ndarray:
    """Coordinates of grounding boxes, NaN where not grounded.

    Shape:
        box_rows: (n, k) from :func:`ground_images`. returns: (n, k, 4) float32.
    """
    box_rows = np.asarray(box_rows, dtype=np.int64)
    out = np.full((*box_rows.shape, 4), np.nan, dtype=np.float32)
    hit = box_rows >= 0
    out[hit] = det.xyxy[box_rows[hit]]
    return out


def score_images(
    selected: np.ndarray,
    box_rows: np.ndarray,
    det: Detections,
    gt: PartBoxes | None,
    images: np.ndarray,
    iou_thresh: float = 0.5,
) -> list[GroundingCounts]:
    """:func:`score_grounding` per image; without ground truth nothing is present.

    Shape:
        selected, box_rows: (n, k); images: (n,) index into det and ``gt``'s images.
    """
    out = []
    for r, i in enumerate(np.asarray(images, dtype=np.int64)):
        rows = box_rows[r]
        local = np.where(rows >= 0, rows - det.of(int(i)).start, -1)
        if gt is None:
            gt_xyxy, gt_attr = np.zeros((0, 4)), np.zeros((0, det.attribute_scores.shape[1]))
        else:
            g = gt.of(int(i))
            gt_xyxy, gt_attr = gt.xyxy[g], gt.attributes[g]
        out.append(
            score_grounding(
                selected[r], local, det.xyxy[det.of(int(i))], gt_xyxy, gt_attr, iou_thresh
            )
        )
    return out
