"""How well the attribute detector finds parts: AP and recall at an IoU threshold.

Hand-written because the maintained implementations (pycocotools, torchmetrics'
``MeanAveragePrecision``) are not dependencies here and are heavy for one number;
this is the PASCAL VOC (2010+) all-point interpolated AP with greedy, score-ordered
matching per image and class, using ``torchvision.ops.box_iou``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from advinterp.data.dataset import PartBoxes
from advinterp.detection.attribute_rcnn import Detections


def greedy_match(
    det_xyxy: np.ndarray,
    det_score: np.ndarray,
    gt_xyxy: np.ndarray,
    iou_thresh: float,
) -> np.ndarray:
    """Match detections of one class in one image to ground truth, best score first.

    Each ground-truth box takes at most one detection: the highest-scoring one that
    overlaps it by ``iou >= iou_thresh`` and is still unmatched; later ones are
    false positives.

    Shape:
        det_xyxy: (K, 4); det_score: (K,); gt_xyxy: (G, 4), same units.
        returns: (K,) int64 index of the matched ground-truth box, -1 if none.
    """
    k = len(det_xyxy)
    out = np.full(k, -1, dtype=np.int64)
    if k == 0 or len(gt_xyxy) == 0:
        return out
    iou = box_iou(
        torch.as_tensor(det_xyxy, dtype=torch.float64),
        torch.as_tensor(gt_xyxy, dtype=torch.float64),
    ).numpy()
    taken = np.zeros(len(gt_xyxy), dtype=bool)
    for d in np.argsort(-np.asarray(det_score), kind="stable"):
        cand = np.where(~taken, iou[d], -1.0)
        g = int(np.argmax(cand))
        if cand[g] >= iou_thresh:
            taken[g] = True
            out[d] = g
    return out


def interpolated_ap(tp: np.ndarray, score: np.ndarray, num_gt: int) -> float:
    """All-point interpolated average precision (PASCAL VOC 2010+).

    Shape:
        tp: (K,) bool, detection k is a true positive; score: (K,); num_gt >= 0.
        returns: AP in [0, 1]; NaN when there is no ground truth.
    """
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score), kind="stable")
    hits = np.asarray(tp, dtype=np.float64)[order]
    ctp = np.cumsum(hits)
    recall = ctp / num_gt
    precision = ctp / np.arange(1, len(hits) + 1)
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


@dataclass(frozen=True)
class DetectionScores:
    """Per-class AP and recall at one IoU threshold, plus attribute quality of hits.

    Attributes:
        ap: (P,) AP per class (NaN for classes without ground truth).
        recall: (P,) fraction of ground-truth boxes found by any detection.
        attribute_precision / attribute_recall: over true-positive detections, their
            attributes scored >= ``attribute_thresh`` against the matched box's labels.
    """

    ap: np.ndarray
    recall: np.ndarray
    attribute_precision: float
    attribute_recall: float

    @property
    def mean_ap(self) -> float:
        return float(np.nanmean(self.ap)) if np.any(~np.isnan(self.ap)) else float("nan")

    @property
    def mean_recall(self) -> float:
        return float(np.nanmean(self.recall)) if np.any(~np.isnan(self.recall)) else float("nan")


def evaluate_detections(
    det: Detections,
    gt_offsets: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_part: np.ndarray,
    gt_attributes: np.ndarray,
    num_classes: int,
    iou_thresh: float = 0.5,
    attribute_thresh: float = 0.5,
) -> DetectionScores:
    """AP/recall per part class at ``iou_thresh`` over all images, and attribute P/R.

    Shape:
        det: N images; gt_offsets: (N+1,); gt_xyxy: (M, 4) in det's units (fractions);
        gt_part: (M,) in [0, P); gt_attributes: (M, A) {0, 1}.
    """
    n = det.num_images
    if len(gt_offsets) != n + 1:
        raise ValueError(f"{n} images of detections but ground truth for {len(gt_offsets) - 1}")
    tps: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    scores: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, dtype=np.int64)
    found = np.zeros(num_classes, dtype=np.int64)
    a_tp = a_pred = a_true = 0
    for i in range(n):
        ds, gs = det.of(i), slice(int(gt_offsets[i]), int(gt_offsets[i + 1]))
        for c in range(num_classes):
            dm = np.flatnonzero(det.part[ds] == c) + ds.start
            gm = np.flatnonzero(gt_part[gs] == c) + gs.start
            num_gt[c] += len(gm)
            match = greedy_match(det.xyxy[dm], det.score[dm], gt_xyxy[gm], iou_thresh)
            tps[c].append(match >= 0)
            scores[c].append(det.score[dm])
            found[c] += int(np.sum(match >= 0))
            for d, g in zip(dm[match >= 0], gm[match[match >= 0]], strict=True):
                pred = det.attribute_scores[d] >= attribute_thresh
                true = gt_attributes[g].astype(bool)
                a_tp += int(np.sum(pred & true))
                a_pred += int(pred.sum())
                a_true += int(true.sum())
    ap = np.array(
        [
            interpolated_ap(np.concatenate(tps[c]), np.concatenate(scores[c]), int(num_gt[c]))
            for c in range(num_classes)
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(num_gt > 0, found / num_gt, np.nan)
    return DetectionScores(
        ap=ap,
        recall=recall,
        attribute_precision=a_tp / a_pred if a_pred else float("nan"),
        attribute_recall=a_tp / a_true if a_true else float("nan"),
    )


def json_number(x: float | None) -> float | None:
    """A score for a metrics JSON: NaN (no ground truth to score against) becomes None."""
    return None if x is None or math.isnan(x) else float(x)


def detection_summary(det: Detections, gt: PartBoxes | None, num_classes: int) -> dict[str, Any]:
    """Detections per image and, against ground-truth part boxes, mAP, mean recall and
    attribute precision/recall (IoU 0.5, attribute score 0.5); NaN as None.

    Shape:
        det: N images; gt: part boxes of the same N images, or None (then only the
        detection count is reported).
    """
    entry: dict[str, Any] = {"detections_per_image": float(np.mean(np.diff(det.offsets)))}
    if gt is not None:
        s = evaluate_detections(det, gt.offsets, gt.xyxy, gt.part, gt.attributes, num_classes)
        entry.update(
            mAP=s.mean_ap,
            mean_recall=s.mean_recall,
            attribute_precision=s.attribute_precision,
            attribute_recall=s.attribute_recall,
        )
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in entry.items()}
