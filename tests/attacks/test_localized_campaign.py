"""The localized attack campaign: image choice, streamed predictions, outcomes, store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from advinterp.attacks.localized import FAILED, STALLED, SUCCESS
from advinterp.attacks.localized_campaign import (
    LocalizedAttacks,
    choose_images,
    localized_campaign,
    predict_rows,
    write_attacks,
)
from advinterp.config.localized_attack import LocalizedAttackConfig
from advinterp.errors import ParamError
from advinterp.store import write_array
from tests.conftest import TINY_PARAMS
from tests.explainers.models import synthetic_images, warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset() -> zarr.Array:
    """12 synthetic 32 px images in a sharded in-memory array (shards of 5 rows)."""
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    dims = ("sample", "channel", "y", "x")
    return write_array(group, "images", synthetic_images(range(12)), dims=dims, chunk_size=5)


def test_choose_images_correct_first_never_the_target_sorted():
    labels = np.array([0, 1, 2, 1, 2, 3, 1, 0])
    rows = np.array([1, 2, 3, 4, 5, 6, 7])
    pred = np.array([1, 2, 0, 1, 3, 1, 1])  # row 3 predicted as the target 0; 7 is labelled 0
    right = {1, 2, 5, 6}  # row 4 (label 2, pred 1) is misclassified
    got = choose_images(labels, pred, rows, target=0, n=4, seed=0)
    assert set(got) == right and list(got) == sorted(got)
    assert set(choose_images(labels, pred, rows, 0, 10, 0)) == right | {4}
    two = [tuple(choose_images(labels, pred, rows, 0, 2, s)) for s in range(8)]
    assert all(set(t) <= right for t in two) and len(set(two)) > 1  # seeded, random order
    assert choose_images(labels, pred, rows, 0, 2, 3).tolist() == list(two[3])


def test_predict_rows_equals_one_forward_of_the_chosen_rows(dataset):
    model = warmed_tiny_resnet()
    rows = np.array([0, 3, 4, 5, 9, 11])
    with torch.no_grad():
        want = model(torch.from_numpy(dataset[:][rows])).argmax(1).numpy()
    for batch in (1, 4, 16):
        got = predict_rows(model, dataset, rows, batch, CPU)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    assert predict_rows(model, dataset, np.zeros(0, np.int64), 4, CPU).shape == (0,)


NAMES = [f"class_{c:03d}" for c in range(4)]


def _cfg(**kw) -> LocalizedAttackConfig:
    base = {**TINY_PARAMS["localized_attack"], "batch_size": 4}  # the tiny params, batches of 4
    return LocalizedAttackConfig.model_validate({**base, **kw})


def test_campaign_attacks_only_inside_regions_and_tallies_outcomes(dataset):
    model = warmed_tiny_resnet()
    labels = np.arange(12) % 4
    rows = np.arange(2, 12)
    attacks = localized_campaign(model, dataset, labels, rows, NAMES, _cfg(), seed=0, device=CPU)
    n = len(attacks.outcome)
    assert len(attacks.source_rows) <= 3 and set(attacks.source_rows) <= set(rows)
    assert (labels[attacks.source_rows] != 0).all()
    assert n <= 2 * len(attacks.source_rows) and attacks.region.shape == (n, 32, 32)
    np.testing.assert_array_equal(attacks.images, dataset[:][attacks.source_rows])
    clean = attacks.images[attacks.source]
    outside = ~np.broadcast_to(attacks.region[:, None], clean.shape)
    assert np.array_equal(attacks.adversarial[outside], clean[outside])
    for i in np.unique(attacks.source):  # each image's regions, largest first
        ranks = attacks.rank[attacks.source == i]
        assert ranks.tolist() == list(range(len(ranks)))
    m = attacks.metrics()
    assert m["attempts"] == n == m["successes"] + m["failed"] + m["stalled"]
    assert m["successes"] == len(attacks.kept) and (attacks.pred[attacks.kept] == 0).all()
    table = attacks.attempts_table()
    assert len(table) == n and set(table["outcome"]) <= {"success", "failed", "stalled"}
    np.testing.assert_array_equal(table["region_pixels"], attacks.region.reshape(n, -1).sum(1))


def test_campaign_refuses_a_target_that_is_no_class_or_no_candidate(dataset):
    model = warmed_tiny_resnet()
    labels = np.arange(12) % 4
    with pytest.raises(ParamError, match=r"localized_attack.target: class 4 does not exist"):
        localized_campaign(
            model, dataset, labels, np.arange(12), NAMES, _cfg(target=4), seed=0, device=CPU
        )
    with pytest.raises(ParamError, match=r"localized_attack.target: no class is named 'owl'"):
        localized_campaign(
            model, dataset, labels, np.arange(12), NAMES, _cfg(target="owl"), seed=0, device=CPU
        )
    with pytest.raises(ParamError, match=r"nothing to attack"):
        localized_campaign(
            model, dataset, labels, np.array([0, 4, 8]), NAMES, _cfg(), seed=0, device=CPU
        )


def _by_hand() -> LocalizedAttacks:
    """Two images, three attempts: success, stalled, success; pixel values by hand."""
    images = np.zeros((2, 3, 2, 2), np.float32)
    region = np.array([[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[1, 1], [1, 0]]], bool)
    adv = images[[0, 0, 1]].copy()
    adv[0, :, 0, 0] = 0.25
    adv[2, 0, 1, 0] = 0.5
    return LocalizedAttacks(
        target=0,
        source_rows=np.array([7, 9]),
        images=images,
        segments=np.zeros((2, 2, 2), np.int64),
        source=np.array([0, 0, 1]),
        rank=np.array([0, 1, 0]),
        region=region,
        adversarial=adv,
        outcome=np.array([SUCCESS, STALLED, SUCCESS]),
        steps=np.array([2, 5, 4]),
        target_prob=np.array([0.75, 0.25, 0.5], np.float32),
        pred=np.array([0, 1, 0]),
    )


def test_metrics_by_hand():
    m = _by_hand().metrics()
    assert (m["attempts"], m["successes"], m["stalled"], m["failed"]) == (3, 2, 1, 0)
    assert m["success_rate"] == pytest.approx(2 / 3)
    assert m["mean_steps"] == 3.0
    assert m["mean_region_fraction"] == pytest.approx((1 + 3) / 2 / 4)
    assert m["mean_linf"] == pytest.approx((0.25 + 0.5) / 2)
    assert m["mean_target_prob"] == pytest.approx(0.625)
    none = LocalizedAttacks(**{**_by_hand().__dict__, "outcome": np.array([FAILED] * 3)})
    assert none.metrics()["mean_steps"] is None and none.metrics()["success_rate"] == 0.0


def test_write_attacks_keeps_only_successes():
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    write_attacks(group, _by_hand(), labels=np.arange(10) % 3, chunk=4)
    assert group["images"].shape == (2, 3, 2, 2)
    assert group["rows"][:].tolist() == [7, 9] and group["labels"][:].tolist() == [1, 0]
    assert group["region"].dtype == np.uint8 and group["region_pixels"][:].tolist() == [1, 3]
    assert group["linf"][:].tolist() == [0.25, 0.5] and group["linf"].dtype == np.float32
    assert group["source_rows"][:].tolist() == [7, 9] and group["segments"].dtype == np.int32
