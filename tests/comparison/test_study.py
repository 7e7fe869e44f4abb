"""The comparison's parts that need no model: examples, references, summaries, agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advinterp.comparison.examples import SharedExamples, round_robin
from advinterp.comparison.maps import centre_map, interpretgan_layer, per_example
from advinterp.comparison.registry import DELTA
from advinterp.comparison.scores import tie_keys
from advinterp.comparison.study import (
    agreement,
    part_regions,
    perturbation_l1,
    score_maps,
    summarise,
)
from advinterp.data.dataset import PartBoxes
from advinterp.errors import ParamError


def test_round_robin_takes_one_per_class_before_a_second() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    picked = round_robin(labels, 3, seed=0)
    assert sorted(labels[picked]) == [0, 1, 2]
    picked5 = round_robin(labels, 5, seed=0)
    assert np.bincount(labels[picked5]).tolist() == [2, 2, 1]
    assert len(round_robin(labels, 100, seed=0)) == len(labels)
    np.testing.assert_array_equal(round_robin(labels, 5, seed=4), round_robin(labels, 5, seed=4))


def examples(n: int = 2, size: int = 8) -> SharedExamples:
    rng = np.random.default_rng(0)
    clean = rng.random((n, 3, size, size)).astype(np.float32)
    adv = clean.copy()
    adv[:, :, :2, :2] += 0.1  # the perturbation sits in the top-left 2x2
    return SharedExamples(
        group=np.array(["untargeted", "localized"][:n]),
        rows=np.arange(n),
        clean=clean,
        adversarial=adv,
        label=np.zeros(n, np.int64),
        adv_class=np.arange(n, dtype=np.int64),
        region=np.zeros((n, size, size), bool),
        localized=np.array([False, True][:n]),
    )


def test_perturbation_l1_sums_channels() -> None:
    ex = examples()
    delta = perturbation_l1(ex)
    assert delta.shape == (2, 8, 8)
    np.testing.assert_allclose(delta[:, :2, :2], 0.3, rtol=1e-5)
    assert delta[:, 2:, :].max() == 0


def test_part_regions_select_the_boxes_showing_the_attributes() -> None:
    boxes = PartBoxes(
        offsets=np.array([0, 2, 3]),
        xyxy=np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 1, 1]], np.float32),
        part=np.array([0, 1, 0]),
        attributes=np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.uint8),
    )
    showing = np.array([[False, True, False], [True, False, False]])
    regions = part_regions(boxes, np.array([0, 1]), (4, 4), showing)
    assert regions[0, 3, 3] and not regions[0, 0, 0] and regions[0].sum() == 4
    assert not regions[1].any()  # image 1's only box shows attribute 2, not 0
    every = part_regions(boxes, np.array([0, 1]), (4, 4))
    assert every[0].sum() == 8 and every[1].sum() == 16
    assert not part_regions(None, np.array([0]), (4, 4)).any()


def test_score_maps_and_summary_against_hand_values() -> None:
    size = (4, 4)
    region = np.zeros((2, *size), bool)
    region[:, 0, :] = True  # 4 of 16 pixels
    perfect = region.astype(float)
    maps = {"perfect": perfect, "inverse": -perfect}
    keys = np.stack([tie_keys(size, i) for i in range(2)])
    scores = score_maps(
        maps, {"perturbation": region, "region": np.zeros_like(region)}, np.array(["a", "b"]), keys
    )
    assert set(scores["reference"]) == {"perturbation"}  # an empty reference scores nothing
    assert scores.loc[scores.method == "perfect", "score"].tolist() == [1.0, 1.0]
    assert scores.loc[scores.method == "inverse", "score"].tolist() == [0.0, 0.0]
    assert (scores["random"] == 0.25).all()
    summary = summarise(scores)
    row = summary[(summary.group == "all") & (summary.method == "perfect")].iloc[0]
    assert (row.n, row["mean"], row.sd, row.random, row.lift) == (2, 1.0, 0.0, 0.25, 0.75)
    assert bool(row.above_random)
    assert (
        not summary[(summary.group == "all") & (summary.method == "inverse")].iloc[0].above_random
    )
    assert set(summary.group) == {"a", "b", "all"}


def test_summary_needs_two_standard_errors_above_random() -> None:
    # both have mean 0.35 against 0.25 (lift 0.10); their spreads differ
    def frame(scores: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "example": range(4),
                "group": "g",
                "reference": "perturbation",
                "method": "m",
                "score": scores,
                "random": 0.25,
            }
        )

    tight = summarise(frame([0.3, 0.4, 0.3, 0.4])).iloc[0]  # sd 0.058, se 0.029: lift > 2 se
    assert tight.se == pytest.approx(np.std([0.3, 0.4, 0.3, 0.4], ddof=1) / 2)
    assert tight.lift == pytest.approx(0.10)
    assert bool(tight.above_random)
    wide = summarise(frame([0.1, 0.6, 0.1, 0.6])).iloc[0]  # sd 0.29, se 0.14: lift < 2 se
    assert wide.lift == pytest.approx(0.10)
    assert not bool(wide.above_random)


def test_agreement_of_identical_maps_is_perfect() -> None:
    rng = np.random.default_rng(5)
    m = rng.random((3, 6, 6))
    keys = np.stack([tie_keys((6, 6), i) for i in range(3)])
    table = agreement({"a": m, "b": m.copy(), "c": -m}, rng.random((3, 6, 6)), 4, keys)
    pair = table[(table.a == "a") & (table.b == "b")].iloc[0]
    assert pair.spearman == pytest.approx(1.0) and pair.jaccard == 1.0 and pair.jaccard_sd == 0.0
    opposite = table[(table.a == "a") & (table.b == "c")].iloc[0]
    assert opposite.spearman == pytest.approx(-1.0) and opposite.jaccard == 0.0
    assert set(table.a) == {DELTA, "a", "b", "c"} and len(table) == 16


def test_centre_map_peaks_at_the_centre() -> None:
    c = centre_map((5, 7))
    assert np.unravel_index(np.argmax(c), c.shape) == (2, 3)
    assert c[0, 0] == c[4, 6] == c[0, 6]


def test_per_example_repeats_the_class_map() -> None:
    maps = {1: np.ones((2, 2)), 4: np.zeros((2, 2))}
    out = per_example(maps, np.array([4, 1, 4]))
    assert out.shape == (3, 2, 2) and out[1].sum() == 4 and out[0].sum() == out[2].sum() == 0


def test_interpretgan_layer_auto_takes_the_largest_vulnerability() -> None:
    metrics = {
        "natural": {"layers": {"conv1": {"vul": 0.1}, "conv2": {"vul": 0.4}, "fc1": {"vul": 0.4}}}
    }
    assert interpretgan_layer("auto", metrics, ["conv1", "conv2", "fc1"]) == "conv2"  # tie: earlier
    assert interpretgan_layer("fc1", metrics, ["conv1", "conv2", "fc1"]) == "fc1"
    with pytest.raises(ParamError, match="compare.igan_layer='fc9'"):
        interpretgan_layer("fc9", metrics, ["conv1"])
    with pytest.raises(ParamError, match="no Vul_i"):
        interpretgan_layer("auto", {}, ["conv1"])


def test_the_centre_prior_is_beaten_only_by_paired_margins() -> None:
    # two examples: "better" beats the prior by 0.2 on both (sd 0 -> above); "mixed" by
    # +0.4 and -0.3 (mean 0.05, sd 0.49 -> not above); the prior never beats itself
    scores = pd.DataFrame(
        {
            "example": [0, 1] * 3,
            "group": "g",
            "reference": "evidence",
            "method": ["centre"] * 2 + ["better"] * 2 + ["mixed"] * 2,
            "score": [0.3, 0.5, 0.5, 0.7, 0.7, 0.2],
            "random": 0.1,
        }
    )
    allg = summarise(scores).set_index(["group", "method"]).loc["all"]
    assert allg.loc["better", "prior_lift"] == pytest.approx(0.2)
    assert bool(allg.loc["better", "above_prior"])
    assert allg.loc["mixed", "prior_lift"] == pytest.approx(0.05)
    assert not bool(allg.loc["mixed", "above_prior"])
    assert not bool(allg.loc["centre", "above_prior"])
