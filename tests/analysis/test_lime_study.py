"""lime_study: segment sizes by hand, and every row equal to explain + explain_eval's Table 1."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from advinterp.analysis.explainer_ranks import table1, tie_break
from advinterp.analysis.lime_study import (
    fixed_segments,
    lime_study,
    segment_stats,
    study_positions,
    study_segmenters,
)
from advinterp.config.lime_study import LimeStudyConfig
from advinterp.explainers.image_sets import SET_CODES
from advinterp.explainers.lime_image import LimeSettings, quickshift_segmenter
from advinterp.explainers.suite import explain_images
from tests.explainers.models import warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_segment_stats_by_hand():
    # Example 0: four row superpixels of 4 px; C = the top-left 2x2, so the best single
    # superpixel is row 0 or 1: |S ∩ C| = 2, |S ∪ C| = 4 + 4 - 2, Jaccard 1/3.
    rows = np.repeat(np.arange(4), 4).reshape(4, 4)
    # Example 1: quadrants 0..3 (4 px each) and C = quadrant 0 exactly: Jaccard 1.
    quads = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True
    big = np.zeros((4, 4), bool)
    big[:3, :3] = True  # 9 px
    stats = segment_stats(
        np.stack([rows, quads]), np.stack([region, big]), np.array([[2, -1], [3, 0]])
    )
    # Example 1 with C = top-left 3x3: quadrant 0 inside (4 px), Jaccard 4/9.
    assert stats["superpixels_mean"] == 4.0
    assert stats["superpixel_area_median"] == 4.0
    assert stats["top1_area_median"] == 4.0
    assert stats["region_area_median"] == pytest.approx((4 + 9) / 2)
    assert stats["oracle_jaccard_median"] == pytest.approx((1 / 3 + 4 / 9) / 2)


def test_segment_stats_counts_unequal_superpixels_and_skips_missing_top():
    seg = np.zeros((1, 4, 4), int)
    seg[0, 0, 0] = 2  # superpixels of 15 px and 1 px (id 1 absent)
    region = np.zeros((1, 4, 4), bool)
    region[0, 0, 0] = True
    stats = segment_stats(seg, region, np.array([[-1]]))
    assert stats["superpixels_mean"] == 2.0
    assert stats["superpixel_area_median"] == 8.0  # median of 15 and 1
    assert stats["oracle_jaccard_median"] == 1.0  # the 1 px superpixel is C
    assert np.isnan(stats["top1_area_median"])


def test_positions_are_spread_and_all_when_few():
    got = study_positions(55, 20)
    assert len(got) == 20 and got[0] == 0 and got[-1] == 54 and (np.diff(got) > 0).all()
    np.testing.assert_array_equal(study_positions(3, 20), [0, 1, 2])


def test_fixed_segments_ignores_the_image():
    seg = np.array([[0, 1], [1, 1]])
    fn = fixed_segments(seg)
    out = fn(np.random.default_rng(0).random((2, 2, 3)))
    np.testing.assert_array_equal(out, seg)
    out[0, 0] = 5  # a copy: LIME may not alter the stored segments
    np.testing.assert_array_equal(fn(np.zeros((2, 2, 3))), seg)


def test_every_row_is_the_table1_of_the_explain_stage_on_those_examples():
    """The study at positions (0, 2) equals explain's suite on the whole set, then Table 1.

    This pins the seeds (LIME's and the random baseline's, per position in the localized
    set), the explained class (the prediction) and which saliency form each row uses.
    """
    rng = np.random.default_rng(3)
    images = rng.random((3, 3, 16, 16), dtype=np.float32)
    regions = np.zeros((3, 16, 16), bool)
    regions[:, 2:8, 3:10] = True
    regions[1, 8:12, :] = True
    model = warmed_tiny_resnet(size=16)
    seg = quickshift_segmenter(2, 6, 0.5)
    positions = np.array([0, 2])
    kw = {"num_samples": 30, "lime_batch_size": 16, "top": 5, "max_superpixels": 4}
    study = lime_study(
        model,
        images[positions],
        regions[positions],
        positions,
        segmentations={"qs": [seg, seg]},
        saliency_forms=["log_prob", "loss"],
        batch_size=2,
        seed=7,
        device=CPU,
        **kw,
    )
    assert study.table[["segmentation", "saliency"]].values.tolist() == [
        ["qs", "log_prob"],
        ["qs", "loss"],
    ]
    settings = LimeSettings(seg, kw["num_samples"], kw["lime_batch_size"], kw["top"])
    for form in ("log_prob", "loss"):
        out = explain_images(
            model,
            images,
            lime=settings,
            batch_size=2,
            device=CPU,
            seed=7,
            saliency=form,
            image_set=SET_CODES["localized"],
        )
        want = table1(
            {**{k: v[positions] for k, v in out.items()}, "region": regions[positions]},
            kw["max_superpixels"],
            tie_break(7, (16, 16)),
        )
        got = study.metrics["settings"]["qs"]["saliency"][form]
        assert got["mean_rank"] == want.mean_rank
        assert got["mean_rank_with_random"] == want.mean_rank_with_random
        assert got["explanations_ranked"] == want.ranked
        row = study.table[study.table["saliency"] == form].iloc[0]
        assert row["rank_lime"] == pytest.approx(want.mean_rank["lime"]["jaccard"])
    # The two forms rank saliency differently here, so a row with the wrong form fails.
    assert study.table["rank_saliency"].nunique() == 2
    assert study.metrics["positions"] == [0, 2] and len(study.figure.axes) == 2


def test_config_rejects_a_setting_listed_twice():
    with pytest.raises(ValidationError, match="listed twice"):
        LimeStudyConfig(segmentations=["quickshift", "quickshift"])
    with pytest.raises(ValidationError):
        LimeStudyConfig(saliency=[])


def test_study_segmenters_gives_each_image_its_segmenter_and_the_oracle_its_own_segments():
    segs = np.arange(2 * 4 * 4).reshape(2, 4, 4) % 3
    found = study_segmenters(
        ["quickshift", "attack_segments"],
        quickshift=(2.0, 6.0, 0.5),
        felzenszwalb=(50.0, 0.5, 10),
        attack=(200.0, 1.0, 40),
        attack_segments=segs,
        sources=np.array([1, 0, 1]),
    )
    assert set(found) == {"quickshift", "attack_segments"}
    assert len(found["quickshift"]) == 3 and len(set(map(id, found["quickshift"]))) == 1
    image = np.zeros((4, 4, 3))
    for fn, source in zip(found["attack_segments"], (1, 0, 1), strict=True):
        assert np.array_equal(fn(image), segs[source])  # whatever the image, the attack's own
