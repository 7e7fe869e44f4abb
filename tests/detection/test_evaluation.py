"""AP and recall against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.data.dataset import PartBoxes
from advinterp.detection.attribute_rcnn import Detections
from advinterp.detection.evaluation import (
    detection_summary,
    evaluate_detections,
    greedy_match,
    interpolated_ap,
    json_number,
)


def test_interpolated_ap_hand_computed():
    # 2 ground-truth boxes; detections by score: TP, FP, TP.
    # (P, R): (1, .5), (.5, .5), (2/3, 1) -> AP = .5 * 1 + .5 * 2/3.
    ap = interpolated_ap(np.array([True, False, True]), np.array([0.9, 0.8, 0.7]), 2)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    # order is by score, not by position
    ap2 = interpolated_ap(np.array([True, True, False]), np.array([0.7, 0.9, 0.8]), 2)
    assert ap2 == pytest.approx(ap)
    assert interpolated_ap(np.array([True, True]), np.array([0.5, 0.4]), 2) == pytest.approx(1.0)
    assert interpolated_ap(np.array([True]), np.array([0.5]), 4) == pytest.approx(0.25)
    assert interpolated_ap(np.zeros(0, bool), np.zeros(0), 3) == 0.0
    assert np.isnan(interpolated_ap(np.zeros(0, bool), np.zeros(0), 0))


def test_greedy_match_one_detection_per_ground_truth():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    det = np.array(
        [
            [0, 0, 10, 10],  # exact on gt 0, lower score
            [1, 0, 11, 10],  # IoU 9/11 with gt 0, higher score -> takes it
            [20, 20, 30, 40],  # IoU 0.5 with gt 1 -> counts (>=)
            [50, 50, 60, 60],  # nothing
        ],
        float,
    )
    out = greedy_match(det, np.array([0.5, 0.9, 0.3, 0.8]), gt, 0.5)
    np.testing.assert_array_equal(out, [-1, 0, 1, -1])
    assert greedy_match(det, np.ones(4), gt[:0], 0.5).tolist() == [-1] * 4


# image 0: gt part 0 (attrs {0}) and part 1 (attrs {1, 2}); image 1: gt part 0 (attrs {0}).
GT = PartBoxes(
    offsets=np.array([0, 2, 3]),
    xyxy=np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 0.4, 0.4]], np.float32),
    part=np.array([0, 1, 0]),
    attributes=np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0]], np.uint8),
)
DET = Detections(
    offsets=np.array([0, 2, 3]),
    xyxy=np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0.6, 0.6, 1, 1]], np.float32),
    part=np.array([0, 0, 0]),  # second box has the wrong class; third misses
    score=np.array([0.9, 0.8, 0.7], np.float32),
    attribute_scores=np.array([[0.9, 0.6, 0.1], [0.1, 0.9, 0.9], [0.9, 0.1, 0.1]], np.float32),
)


def test_evaluate_detections_per_class_and_attributes():
    gt_offsets, gt_xyxy, gt_part, gt_attr, det = GT.offsets, GT.xyxy, GT.part, GT.attributes, DET
    s = evaluate_detections(det, gt_offsets, gt_xyxy, gt_part, gt_attr, num_classes=2)
    # class 0: 2 gt; detections by score TP(0.9), FP(0.8), FP(0.7) -> AP = .5, recall .5
    assert s.ap[0] == pytest.approx(0.5) and s.recall[0] == pytest.approx(0.5)
    assert s.ap[1] == 0.0 and s.recall[1] == 0.0
    assert s.mean_ap == pytest.approx(0.25)
    # only the TP box counts for attributes: predicts {0, 1}, truth {0}
    assert s.attribute_precision == pytest.approx(0.5)
    assert s.attribute_recall == pytest.approx(1.0)
    with pytest.raises(ValueError, match="ground truth for"):
        evaluate_detections(det, gt_offsets[:2], gt_xyxy, gt_part, gt_attr, 2)


def test_json_number_turns_nan_into_none():
    assert json_number(float("nan")) is None and json_number(None) is None
    assert json_number(np.float32(0.25)) == 0.25 and type(json_number(np.float64(1))) is float


def test_detection_summary_with_and_without_ground_truth():
    s = detection_summary(DET, GT, num_classes=2)
    # as above: class 0 AP .5, class 1 AP 0; recall .5 and 0; attributes P .5, R 1
    assert s == pytest.approx(
        {
            "detections_per_image": 1.5,
            "mAP": 0.25,
            "mean_recall": 0.25,
            "attribute_precision": 0.5,
            "attribute_recall": 1.0,
        }
    )
    assert detection_summary(DET, None, 2) == {"detections_per_image": 1.5}
    # no hit at all: attribute precision has nothing to count -> None, not NaN
    far = Detections(
        offsets=np.array([0, 1, 1]),
        xyxy=np.array([[0.9, 0.9, 1, 1]], np.float32),
        part=np.array([0]),
        score=np.array([0.5], np.float32),
        attribute_scores=np.zeros((1, 3), np.float32),
    )
    s = detection_summary(far, GT, 2)
    assert s["attribute_precision"] is None and s["attribute_recall"] is None
    assert s["mAP"] == 0.0 and s["detections_per_image"] == 0.5
