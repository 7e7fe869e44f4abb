"""Matching selected attributes with detector boxes, and scoring against part boxes."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.data.dataset import PartBoxes
from advinterp.detection.attribute_rcnn import Detections
from advinterp.grounding.matching import (
    GroundingCounts,
    box_coordinates,
    ground,
    ground_images,
    score_grounding,
    score_images,
)

# three detected boxes, four attributes
ATTR = np.array(
    [
        [0.9, 0.1, 0.6, 0.0],
        [0.2, 0.8, 0.7, 0.0],
        [0.95, 0.0, 0.0, 0.0],
    ]
)
SCORE = np.array([0.9, 0.8, 0.2])


def test_ground_picks_the_box_that_carries_the_attribute_most():
    out = ground(np.array([0, 1, 2, 3]), ATTR, SCORE, attribute_thresh=0.5)
    # attr 0: box 2 (0.95) beats box 0 (0.9); attr 2: box 1 (0.7); attr 3 nowhere
    assert out.tolist() == [2, 1, 1, -1]


def test_ground_respects_box_and_attribute_thresholds():
    out = ground(np.array([0, 1, 2, 3]), ATTR, SCORE, attribute_thresh=0.5, box_thresh=0.5)
    assert out.tolist() == [0, 1, 1, -1]  # box 2 is below the detection threshold
    assert ground(np.array([2]), ATTR, SCORE, attribute_thresh=0.75).tolist() == [-1]
    assert ground(np.array([0, 1]), np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == [-1, -1]
    assert ground(np.array([], int), ATTR, SCORE, 0.5).tolist() == []


def test_score_grounding_precision_recall_by_hand():
    det = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 4, 4]], float)
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    gt_attr = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]])
    selected = np.array([0, 1, 2, 3, 4])
    boxes = np.array([0, 0, 2, 1, -1])
    c = score_grounding(selected, boxes, det, gt, gt_attr, iou_thresh=0.5)
    # attr 0 in box 0: gt 0 carries it, IoU 1 -> correct
    # attr 1 in box 0: only gt 1 carries it, IoU 0 -> wrong place
    # attr 2 in box 2: gt 0 carries it, IoU 0.16 -> too small
    # attr 3 in box 1: no gt carries it -> grounded but absent
    # attr 4: not grounded and absent
    assert c == GroundingCounts(selected=5, grounded=4, present=3, correct=1)
    s = c.summary()
    assert s["precision"] == pytest.approx(0.25) and s["recall"] == pytest.approx(1 / 3)
    assert s["grounded_fraction"] == pytest.approx(0.8)
    assert s["present_fraction"] == pytest.approx(0.6)


def test_counts_add_and_empty_summary():
    total = GroundingCounts(2, 1, 1, 1) + GroundingCounts(3, 0, 2, 0)
    assert total == GroundingCounts(5, 1, 3, 1)
    assert GroundingCounts().summary()["precision"] is None
    no_gt = score_grounding(
        np.array([0]), np.array([0]), np.zeros((1, 4)), np.zeros((0, 4)), np.zeros((0, 3))
    )
    assert no_gt == GroundingCounts(1, 1, 0, 0)


def test_many_images_use_each_images_own_boxes():
    det = Detections(
        offsets=np.array([0, 2, 2, 3]),  # image 1 has no detection
        xyxy=np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 1, 1]], np.float32),
        part=np.zeros(3, np.int64),
        score=np.ones(3, np.float32),
        attribute_scores=np.array([[0.9, 0.0], [0.0, 0.9], [0.9, 0.9]], np.float32),
    )
    selected = np.array([[1, 0], [0, 1], [1, 0]])
    images = np.array([0, 1, 2])
    rows = ground_images(selected, det, images, attribute_thresh=0.5)
    assert rows.tolist() == [[1, 0], [-1, -1], [2, 2]]  # rows of det, never another image's
    coords = box_coordinates(rows, det)
    np.testing.assert_allclose(coords[0, 0], [0.5, 0.5, 1, 1])
    assert np.isnan(coords[1]).all()
    gt = PartBoxes(
        offsets=np.array([0, 1, 2, 3]),
        xyxy=np.array([[0.5, 0.5, 1, 1], [0, 0, 1, 1], [0, 0, 0.5, 0.5]], np.float32),
        part=np.zeros(3, np.int64),
        attributes=np.array([[0, 1], [1, 0], [1, 1]], np.uint8),
    )
    counts = score_images(selected, rows, det, gt, images)
    assert counts[0] == GroundingCounts(selected=2, grounded=2, present=1, correct=1)
    assert counts[1] == GroundingCounts(selected=2, grounded=0, present=1, correct=0)
    # image 2: its box covers the whole image, the gt box a quarter: IoU .25 < .5
    assert counts[2] == GroundingCounts(selected=2, grounded=2, present=2, correct=0)
    no_gt = score_images(selected, rows, det, None, images)
    assert [c.present for c in no_gt] == [0, 0, 0]
