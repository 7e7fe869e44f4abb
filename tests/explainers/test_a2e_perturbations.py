"""Attack to explain as an explanation of two classifiers (Jalwana et al. Sec. 5.1)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from advinterp.analysis.spread import is_spread
from advinterp.attacks.attack_to_explain import patch_box, visualise_perturbation
from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.data.dataset import TEST
from advinterp.errors import ParamError
from advinterp.explainers.a2e_perturbation_figures import perturbation_figure, region_figure
from advinterp.explainers.a2e_perturbations import (
    HEADLINE,
    MODEL_KEYS,
    RUN_ARRAYS,
    explain_classes,
    target_scores,
)
from advinterp.models.predict import predict
from tests.attacks.colour_model import SIZE, colour_model, colour_world

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def world():
    """30 images, class = dominant colour (red, green, blue); train then test halves."""
    images, index = colour_world(30)
    models = {"standard": colour_model(10.0), "second": colour_model(4.0)}
    return models, images, index


def config(**kw) -> A2EExplainConfig:
    base = dict(
        targets=[2],
        seeds_per_target=2,
        num_samples=4,
        eval_images=3,
        reference_size=None,  # η as stated, at the colour world's 16 px
        attack=dict(
            eta=2.0, batch_size=3, max_iterations=3, refine_every=2, refine_until=5, step_size=0.05
        ),
        region=dict(size=0.25, positions=[[0.25, 0.25], [0.5, 0.0]]),
    )
    return A2EExplainConfig(**{**base, **kw})


def explain(world, cfg=None, seed=0):
    models, images, index = world
    return explain_classes(
        models, images, index, cfg or config(), seed=seed, device=CPU, accuracy_batch_size=4
    )


@pytest.fixture(scope="module")
def result(world):
    return explain(world)


def test_runs_are_models_by_targets_by_seeds_then_the_patches(result):
    runs = result.runs
    assert [(r["model"], r["seed"], r["region"]) for r in runs] == [
        ("standard", 0, -1),
        ("standard", 1, -1),
        ("second", 0, -1),
        ("second", 1, -1),
        ("standard", 0, 0),
        ("standard", 0, 1),
    ]
    assert [r["run"] for r in runs][:2] == ["standard/blue/seed0", "standard/blue/seed1"]
    assert runs[-1]["run"] == "standard/blue/seed0/region1"
    assert result.reference == 0 and result.region_target == 2


def test_seeds_are_distinct_non_target_test_images(world, result):
    _, images, index = world
    rows = [r["seed_row"] for r in result.runs[:2]]
    assert len(set(rows)) == 2
    for r, row in zip(result.runs[:4], rows * 2, strict=True):
        assert r["seed_row"] == row  # both models explained from the same seeds
        assert index.split[row] == TEST and index.labels[row] != 2
    assert torch.equal(result.seed_images[0], torch.as_tensor(images[rows[0]]))


def test_patched_runs_carry_the_same_uniform_patch_in_the_seed(result):
    for i, box in zip((4, 5), result.boxes, strict=True):
        top, left, h, w = box
        patch = result.seed_images[i][:, top : top + h, left : left + w]
        assert torch.equal(patch, patch[:, :1, :1].expand_as(patch))
        assert 0.0 <= result.runs[i]["energy_near_region"] <= 1.0
    assert result.boxes == [patch_box(SIZE, 0.25, (0.25, 0.25)), patch_box(SIZE, 0.25, (0.5, 0))]


def test_perturbations_stay_in_the_l2_ball_and_arrays_have_one_row_per_run(result):
    arrays = result.arrays()
    p, _ = arrays["perturbation"]
    assert p.shape == (6, 3, SIZE, SIZE) and p.dtype == np.float32
    assert np.all(np.sqrt((p.astype(np.float64) ** 2).sum(axis=(1, 2, 3))) <= 2.0 * (1 + 1e-5))
    for name, dtype in RUN_ARRAYS.items():
        assert arrays[name][0].dtype == dtype and arrays[name][0].shape == (6,)
    codes, attrs = arrays["model"]
    assert codes.tolist() == [0, 0, 1, 1, 0, 0] and attrs == {"codes": list(MODEL_KEYS)}


def test_cross_model_values_are_each_models_target_probability(world, result):
    models, _, _ = world
    t = 2
    for i in range(4):
        p = result.results[i].perturbation
        for key, model in models.items():
            with torch.no_grad():
                want = torch.softmax(model(visualise_perturbation(p)[None]), 1)[0, t]
            assert result.runs[i][f"image_probability_{key}"] == pytest.approx(float(want))
    table = result.metrics["cross_model"]["perturbation_as_image"]
    for source in MODEL_KEYS:
        rows = [r for r in result.runs[:4] if r["model"] == source]
        for judge in MODEL_KEYS:
            want = np.mean([r[f"image_probability_{judge}"] for r in rows])
            assert table[source][judge] == pytest.approx(want)


def test_models_table_reports_test_accuracy_and_run_means(world, result):
    models, images, index = world
    rows = np.flatnonzero(index.split == TEST)
    for key, model in models.items():
        entry = result.metrics["models"][key]
        pred = predict(model, torch.as_tensor(images[:][rows]), batch_size=4)
        assert entry["test_accuracy"] == pytest.approx(
            float((pred.numpy() == index.labels[rows]).mean())
        )
        assert entry["runs"] == 2 and entry["arch"] == "colour"
        own = [r["target_probability"] for r in result.runs[:4] if r["model"] == key]
        assert entry["mean_target_probability"] == pytest.approx(np.mean(own))
    assert result.metrics["chance"] == pytest.approx(1 / 3)
    assert len(result.metrics["region"]["patches"]) == 2


def test_curves_hold_each_models_mean_then_every_run(result):
    curves = result.curves
    assert list(curves.columns[:3]) == ["iteration", *MODEL_KEYS]
    assert list(curves.columns[3:]) == [r["run"] for r in result.runs]
    n = len(curves)
    assert n == max(r.iterations for r in result.results)
    hs = [
        np.pad(r.history, (0, n - len(r.history)), constant_values=np.nan)
        for r in result.results[:2]
    ]
    np.testing.assert_allclose(curves["standard"], np.nanmean(hs, axis=0))


def test_same_seed_same_perturbations(world, result):
    again = explain(world)
    for a, b in zip(result.results, again.results, strict=True):
        assert torch.equal(a.perturbation, b.perturbation)
    other = explain(world, seed=1)
    assert not torch.equal(result.results[0].perturbation, other.results[0].perturbation)


def test_a_region_target_outside_the_targets_gets_its_own_reference_run(world):
    res = explain(world, config(region=dict(target=1, size=0.25, positions=[[0.0, 0.0]])))
    assert [(r["model"], r["target"], r["region"]) for r in res.runs[4:]] == [
        ("standard", 1, 0),
        ("standard", 1, -1),
    ]
    assert res.reference == 5 and res.region_target == 1
    assert res.metrics["models"]["standard"]["runs"] == 3  # the reference counts as a run


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (dict(targets=[3]), "a2e_explain.targets"),
        (dict(region=dict(target=7)), "a2e_explain.region.target"),
        (dict(seeds_per_target=15), "too few non-target images"),
    ],
)
def test_bad_classes_are_param_errors(world, cfg, match):
    with pytest.raises(ParamError, match=match):
        explain(world, config(**cfg))


def test_figures_have_one_cell_per_run(result):
    names = ["red", "green", "blue"]
    fig = perturbation_figure(result, names, dpi=40)
    assert len(fig.axes) == 1 * (1 + 2 * 2)
    assert fig.axes[1].get_xlabel().startswith("℘=")
    plt.close(fig)
    fig = region_figure(result, names, dpi=40)
    assert len(fig.axes) == 2 * 3
    assert fig.axes[3].get_xlabel() == "no patch"  # bottom-left: the unpatched reference
    plt.close(fig)


def test_eta_stated_at_the_reference_size_is_scaled_to_equal_rms(world):
    # η = 2 stated at 64 px is η = 0.5 at the colour world's 16 px: the same rms per value
    res = explain(world, config(reference_size=4 * SIZE, region=dict(positions=[[0.0, 0.0]])))
    params = res.metrics["params"]
    assert params["eta"] == pytest.approx(0.5)
    assert (params["eta_at_reference_size"], params["reference_size"]) == (2.0, 64)
    assert params["rms_per_value"] == pytest.approx(2.0 / math.sqrt(3 * 64 * 64))
    p = res.arrays()["perturbation"][0].astype(np.float64)
    assert np.sqrt((p**2).sum(axis=(1, 2, 3))).max() <= 0.5 * (1 + 1e-5)
    assert np.sqrt((p**2).sum(axis=(1, 2, 3))).max() > 0.25  # the budget is used, not 2
    assert res.arrays()["perturbation"][1]["eta"] == pytest.approx(0.5)


def test_target_scores_are_the_probability_and_the_top_class():
    x = torch.full((2, 3, SIZE, SIZE), 0.1)
    x[0, 2] = 0.5  # blue dominant: top class 2
    x[1, 0] = 0.5  # red dominant
    prob, top1 = target_scores(colour_model(10.0), x, 2, batch_size=1)
    assert top1.tolist() == [True, False]
    want = torch.softmax(colour_model(10.0)(x), 1)[:, 2]
    torch.testing.assert_close(prob, want)


def test_headline_numbers_are_spreads_over_the_seeds_of_the_target_means(world):
    # two targets, two seeds: each value is the mean over the targets of one seed's runs
    res = explain(world, config(targets=[1, 2], region=dict(positions=[[0.0, 0.0]])))
    head = res.metrics["headline"]
    runs = [r for r in res.runs if r["region"] < 0]
    for key, prefix in HEADLINE.items():
        for source in MODEL_KEYS:
            for judge in MODEL_KEYS:
                got = head[key][source][judge]
                assert is_spread(got) and got["n"] == 2, (key, source, judge)
                want = [
                    np.mean(
                        [
                            r[f"{prefix}_{judge}"]
                            for r in runs
                            if r["model"] == source and r["seed"] == k
                        ]
                    )
                    for k in (0, 1)
                ]
                assert got["values"] == pytest.approx(want)
                assert got["mean"] == pytest.approx(np.mean(want))
    for r in runs:
        for judge in MODEL_KEYS:
            assert 0.0 <= r[f"heldout_fooling_rate_{judge}"] <= 1.0
            assert r[f"image_top1_{judge}"] in (0.0, 1.0)
    # the class-revealing measure: the perturbation alone, as an image, is the target
    models, _, _ = world
    for r, result in zip(res.runs, res.results, strict=True):
        if r["region"] < 0:
            _, top1 = target_scores(
                models["second"], visualise_perturbation(result.perturbation)[None], r["target"]
            )
            assert r["image_top1_second"] == float(top1[0])
    assert set(head["clean_heldout_target_rate"]) == set(MODEL_KEYS)
    assert (
        res.metrics["cross_model"]["clean_heldout_target_rate"] == head["clean_heldout_target_rate"]
    )
