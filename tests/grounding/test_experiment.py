"""The grounding experiment (Eqs. 16-17, Figs. 6-7) on a chain countable by hand.

See tests/grounding/chain_stores.py for the chain. With top_k = 1 the untargeted case
is worked out below; the other cases are checked by their eligible images.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.figure import Figure

from advinterp.config.ground import GroundConfig
from advinterp.data.dataset import AttributeIndex, PartBoxes
from advinterp.detection.artifact import write_detections
from advinterp.detection.attribute_rcnn import Detections
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.experiment import CASES, TABLE_COLUMNS, ground_attributes
from tests.grounding.chain_stores import DATASET_LABELS, PHI, ROWS, chain_stores, memory_group

# Ground truth per dataset row (attacked image i is row ROWS[i] = 1, 3, 0, 2):
# one box each for rows 0-3, none for row 4.
GT = PartBoxes(
    offsets=np.array([0, 1, 2, 3, 4, 4]),
    xyxy=np.array(
        [[0.5, 0.5, 1, 1], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]], np.float32
    ),
    part=np.zeros(4, np.int64),
    attributes=np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], np.uint8),
)
INDEX = AttributeIndex(
    name="hand",
    labels=DATASET_LABELS,
    split=np.full(5, 2, np.int8),
    class_names=["gull", "wren"],
    attribute_names=["bill_color::red", "wing_color::blue", "tail_shape::fan"],
    class_attributes=PHI,
    part_names=["head"],
    boxes=GT,
)


def _det(boxes: list[list[tuple[list[float], float, list[float]]]]) -> Detections:
    """Detections from, per image, a list of (xyxy, score, attribute scores)."""
    flat = [b for image in boxes for b in image]
    return Detections(
        offsets=np.concatenate([[0], np.cumsum([len(b) for b in boxes])]).astype(np.int64),
        xyxy=np.array([b[0] for b in flat], np.float32).reshape(-1, 4),
        part=np.zeros(len(flat), np.int64),
        score=np.array([b[1] for b in flat], np.float32),
        attribute_scores=np.array([b[2] for b in flat], np.float32).reshape(-1, 3),
    )


NONE: list[list[tuple[list[float], float, list[float]]]] = [[], [], [], []]
SETS = {
    # image 0: a box carrying attribute 0 on its gt box; image 2: attribute 0 too weak
    # (0.2 < 0.3); image 3: attribute 1 on a box that overlaps its gt box by IoU 0.25.
    "clean": _det(
        [
            [([0, 0, 0.5, 0.5], 0.9, [0.9, 0, 0])],
            [],
            [([0.5, 0.5, 1, 1], 0.9, [0.2, 0, 0])],
            [([0, 0, 1, 1], 0.9, [0, 0.8, 0])],
        ]
    ),
    "standard/untargeted": _det([[([0, 0, 0.5, 0.5], 0.5, [0, 0.95, 0])], [], [], []]),
    "standard/targeted": _det(NONE),
    "at_0.06/untargeted": _det(NONE),
}


def _stores(rows=ROWS):
    attack, sje = chain_stores()
    dets = memory_group({"rows": rows}, {"eps": 0.06, "eps_key": "eps_0.06", "at_model": "at_0.06"})
    for name, det in SETS.items():
        write_detections(dets.require_group(name), det, 4)
    images = memory_group({"images": np.random.default_rng(2).random((5, 3, 8, 8), np.float32)})
    return images["images"], attack, sje, dets


def _ground(index=INDEX, rows=ROWS, top_k=1, **cfg):
    images, attack, sje, dets = _stores(rows)
    return ground_attributes(images, index, attack, sje, dets, GroundConfig(top_k=top_k, **cfg))


def test_untargeted_case_by_hand():
    result = _ground()
    m = result.metrics["untargeted"]
    assert m["eligible"] == 3 and m["attacked"] == 4  # images 0, 2, 3 fooled
    # Eq. 16 on the clean images picks attribute 0, 0, 1; grounded on images 0 and 3;
    # present in all three gt boxes; correct only on image 0 (image 3's box IoU 0.25).
    assert m["clean"] == {
        "selected": 3,
        "grounded": 2,
        "present": 3,
        "correct": 1,
        "grounded_fraction": pytest.approx(2 / 3),
        "present_fraction": 1.0,
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
    }
    # Eq. 17 on the adversarial images picks attribute 1, 1, 0: the wrong class's;
    # image 0's box carries attribute 1, which no gt box of image 0 shows.
    adv = m["adversarial"]
    assert (adv["selected"], adv["grounded"], adv["present"], adv["correct"]) == (3, 1, 0, 0)
    assert adv["precision"] == 0.0 and adv["recall"] is None

    t = result.table
    assert list(t.columns) == list(TABLE_COLUMNS)
    u = t[t["case"] == "untargeted"]
    clean, right = u[u["side"] == "clean"], u[u["side"] == "adversarial"]
    assert list(clean["row"]) == [1, 0, 2] and list(clean["true"]) == [0, 0, 1]
    assert list(clean["shown_class"]) == [0, 0, 1] and list(right["shown_class"]) == [1, 1, 0]
    assert list(clean["grounded"]) == [1, 0, 1] and list(clean["correct"]) == [1, 0, 0]


def test_cases_eligible_images_metrics_and_figures():
    result = _ground()
    m = result.metrics
    assert (m["eps"], m["at_model"], m["classifier"], m["top_k"]) == (0.06, "at_0.06", "sje", 1)
    assert m["targeted"]["eligible"] == 2  # images 0, 1
    assert m["at"]["eligible"] == 2  # images 0, 3: fooled on standard, right under AT
    assert set(m["at"]) >= {"adversarial", "adversarial_at"}
    assert len(result.table) == 2 * (3 + 2 + 2)
    assert set(result.figures) == set(CASES)
    assert all(isinstance(f, Figure) for f in result.figures.values())
    # untargeted examples: image 0, then image 3 (a new class), then image 2;
    # one box drawn wherever the panel's attribute was grounded.
    image_axes = result.figures["untargeted"].axes[::2]
    assert [len(ax.patches) for ax in image_axes] == [1, 1, 1, 0, 0, 0]


def test_without_part_boxes_only_the_grounded_fraction_is_reported():
    result = _ground(index=dataclasses.replace(INDEX, boxes=None))
    clean = result.metrics["untargeted"]["clean"]
    assert clean["grounded_fraction"] == pytest.approx(2 / 3)
    assert clean["precision"] is None and clean["recall"] is None
    assert clean["present_fraction"] is None


def test_softmax_predictions_decide_eligibility():
    result = _ground(classifier="softmax")  # the softmax is never fooled in this chain
    assert [result.metrics[c]["eligible"] for c in CASES] == [0, 0, 0]
    assert result.table.empty and list(result.table.columns) == list(TABLE_COLUMNS)
    assert set(result.figures) == set(CASES)


def test_refusals():
    with pytest.raises(ParamError, match="ground.top_k: 4 is more than the 3 attributes"):
        _ground(top_k=4)
    with pytest.raises(StoreError, match="rows differ"):
        _ground(rows=ROWS[::-1].copy())
