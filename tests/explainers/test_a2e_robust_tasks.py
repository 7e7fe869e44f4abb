"""Generation, inpainting and sketch manipulation with a robust model, scored (Sec. 5.2)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from advinterp.analysis.spread import is_spread
from advinterp.config.a2e_robust import A2ERobustConfig
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex, PartBoxes
from advinterp.errors import CheckpointError, ParamError
from advinterp.explainers.a2e_robust_figures import (
    generation_figure,
    inpainting_figure,
    sketch_figure,
)
from advinterp.explainers.a2e_robust_tasks import (
    INDEPENDENT,
    JUDGES,
    check_independent,
    corrupt_position,
    judge_scores,
    lineage,
    load_robust,
    mean_by_prefix,
    robust_tasks,
    took_part,
)
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from tests.attacks.colour_model import SIZE, colour_model, colour_world
from tests.data.indexes import toy_index

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _index(labels, split, boxes=None) -> AttributeIndex:
    return toy_index(labels, split, ["red", "green", "blue"], name="colours", boxes=boxes)


@pytest.fixture(scope="module")
def world():
    images, index = colour_world(24)
    robust = colour_model(10.0)
    judges = {"second": colour_model(3.0), "robust": robust, "parent": colour_model(6.0)}
    return robust, judges, images, index


def config(**kw) -> A2ERobustConfig:
    attack = dict(eta=1.0, batch_size=3, gamma=0.99, max_iterations=3, step_size=0.05)
    base = dict(
        targets=[2],
        seeds_per_target=2,
        num_samples=4,
        downsample=4,
        reference_size=None,  # η as stated, at the colour world's 16 px
        generation=dict(attack, refine_every=0),
        inpainting=dict(images=2, attack=dict(attack, refine_every=0)),
        sketch=dict(n_segments=4, attack=dict(attack, refine_every=1, refine_until=4)),
    )
    return A2ERobustConfig(**{**base, **kw})


def run(world, cfg=None, seed=0):
    robust, judges, images, index = world
    return robust_tasks(robust, judges, images, index, cfg or config(), seed=seed, device=CPU)


@pytest.fixture(scope="module")
def result(world):
    return run(world)


def test_judge_scores_are_softmax_confidence_and_top1():
    x = torch.zeros(3, SIZE, SIZE)
    x[0] = 0.8
    x[1] = 0.1
    x[2] = 0.1
    scores = judge_scores({"a": colour_model(10.0)}, x, 0)
    # logits 10 x channel means: (8, 1, 1)
    assert scores["a_confidence"] == pytest.approx(math.exp(8) / (math.exp(8) + 2 * math.e))
    assert scores["a_top1"] == 1.0
    assert judge_scores({"a": colour_model(10.0)}, x, 2)["a_top1"] == 0.0


def test_mean_by_prefix_averages_the_keys_of_one_method():
    records = [{"a/x": 1.0, "a/y": 2.0, "b/x": 5.0}, {"a/x": 3.0, "a/y": 4.0, "b/x": 7.0}]
    assert mean_by_prefix(records, "a/") == {"x": 2.0, "y": 3.0}


def test_corrupt_square_centred_on_a_part_box_else_anywhere_inside():
    labels, split = np.zeros(2, np.int64), np.array([TRAIN, TEST], np.int8)
    boxes = PartBoxes(
        offsets=np.array([0, 1, 1]),
        xyxy=np.array([[0.5, 0.25, 1.0, 0.75]], np.float32),  # centre x 12, y 8 at 16 px
        part=np.zeros(1, np.int64),
        attributes=np.zeros((1, 1), np.uint8),
    )
    rng = np.random.default_rng(0)
    assert corrupt_position(_index(labels, split, boxes), 0, 16, 4, rng) == (6, 10)
    # near the border it is pushed back inside
    assert corrupt_position(_index(labels, split, boxes), 0, 16, 10, rng) == (3, 6)
    top, left = corrupt_position(_index(labels, split, boxes), 1, 16, 4, rng)  # no box
    assert 0 <= top <= 12 and 0 <= left <= 12


def test_load_robust_takes_the_largest_train_eps_or_the_named_one(tmp_path):
    torch.manual_seed(0)
    for stem, eps in (("eps_a", 0.03), ("eps_b", 0.01), ("plain", None)):
        model = build_classifier("tiny_vgg", 3, (0.5,) * 3, (0.25,) * 3)
        meta = {} if eps is None else {"train_eps": eps}
        save_classifier(tmp_path / f"{stem}.pt", model, **meta)
    model, path, eps = load_robust(tmp_path, None, CPU, 3)
    assert path.name == "eps_a.pt" and eps == 0.03 and model.arch == "tiny_vgg"
    _, path, eps = load_robust(tmp_path, "eps_b", CPU, 3)
    assert path.name == "eps_b.pt" and eps == 0.01
    with pytest.raises(ParamError, match="a2e_robust.robust_model"):
        load_robust(tmp_path, "missing", CPU, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no robust checkpoints"):
        load_robust(tmp_path / "empty", None, CPU, 3)


def test_every_task_keeps_its_images_in_range_and_one_record_each(result):
    tasks = result.tasks
    assert [len(t.records) for t in tasks.values()] == [2, 2, 1]
    for task in tasks.values():
        for name, arr in task.arrays().items():
            assert arr.dtype == np.float32 and arr.min() >= 0.0 and arr.max() <= 1.0, name
            assert arr.shape[0] == len(task.records)
    assert result.inpainting.arrays()["mask"].shape == (2, SIZE, SIZE)
    assert result.generation.classes().tolist() == [2, 2]
    assert result.sketch.classes().tolist() == [2]
    assert len(set(result.inpainting.classes().tolist())) == 2  # one image per class


def test_a2e_and_pgd_images_stay_within_eta_of_their_seed(result):
    gen = result.generation.arrays()
    for method in ("a2e", "pgd"):
        delta = (gen[method] - gen["seed"]).astype(np.float64)
        assert np.all(np.sqrt((delta**2).sum(axis=(1, 2, 3))) <= 1.0 + 1e-5)


def test_inpainting_scores_the_masked_region_against_the_original(result):
    summary = result.metrics["inpainting"]
    assert summary["corrupted"]["unmasked_mse"] == 0.0
    assert summary["original"]["masked_mse"] == 0.0
    arrays = result.inpainting.arrays()
    mask = arrays["mask"][:, None]
    want = ((arrays["corrupted"] - arrays["original"]) ** 2 * mask).sum((1, 2, 3)) / (
        3 * mask.sum((1, 2, 3))
    )
    assert summary["corrupted"]["masked_mse"] == pytest.approx(float(want.mean()), rel=1e-5)


def test_metrics_are_means_over_the_records(result):
    for task, methods in (
        ("generation", ("seed", "a2e", "pgd")),
        ("inpainting", ("corrupted", "a2e", "pgd", "original")),
        ("sketch", ("sketch", "a2e", "pgd")),
    ):
        recs = result.tasks[task].records
        for m in methods:
            for judge in JUDGES:
                got = result.metrics[task][m][f"{judge}_confidence"]
                assert got == pytest.approx(np.mean([r[f"{m}/{judge}_confidence"] for r in recs]))
        assert result.metrics[task]["n"] == len(recs)
    assert result.metrics["generation"]["eta"] == 1.0
    assert result.metrics["inpainting"]["beta"] == 10.0


def test_same_seed_same_images(world, result):
    again = run(world)
    for name, task in result.tasks.items():
        for key, arr in task.arrays().items():
            assert np.array_equal(arr, again.tasks[name].arrays()[key]), (name, key)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [(dict(targets=[3]), "a2e_robust.targets"), (dict(downsample=5), "a2e_robust.downsample")],
)
def test_bad_params_are_param_errors(world, cfg, match):
    with pytest.raises(ParamError, match=match):
        run(world, config(**cfg))


def test_figures_have_one_row_per_image(result):
    names = ["red", "green", "blue"]
    for draw, cols, rows in (
        (generation_figure, 3, 2),
        (inpainting_figure, 4, 2),
        (sketch_figure, 4, 1),
    ):
        fig = draw(result, names, dpi=40)
        assert len(fig.axes) == rows * cols, draw.__name__
        plt.close(fig)


def test_every_eta_is_stated_at_the_reference_size(world):
    # η = 1 stated at 32 px is 0.5 at 16 px (equal rms per value), for all three tasks
    res = run(world, config(reference_size=2 * SIZE))
    for task in ("generation", "inpainting", "sketch"):
        assert res.metrics[task]["eta"] == pytest.approx(0.5)
        assert res.metrics[task]["eta_at_reference_size"] == 1.0
    gen = res.generation.arrays()
    for method in ("a2e", "pgd"):
        delta = (gen[method] - gen["seed"]).astype(np.float64)
        assert np.all(np.sqrt((delta**2).sum(axis=(1, 2, 3))) <= 0.5 + 1e-5)


def test_generation_headline_is_a_spread_over_seeds_by_the_independent_judge(world):
    res = run(
        world,
        config(
            targets=[1, 2],
            inpainting=dict(
                images=1,
                attack=dict(
                    eta=1.0, batch_size=3, max_iterations=2, refine_every=0, step_size=0.05
                ),
            ),
        ),
    )
    head = res.metrics["headline"]["generation"]
    assert INDEPENDENT == "second" and res.metrics["independent_judge"] == "second"
    recs = res.generation.records
    assert [(r["target"], r["seed_index"]) for r in recs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    for method in ("seed", "a2e", "pgd"):
        for what in ("top1", "confidence"):
            got = head[method][what]
            want = [
                np.mean([r[f"{method}/second_{what}"] for r in recs if r["seed_index"] == k])
                for k in (0, 1)
            ]
            assert is_spread(got) and got["values"] == pytest.approx(want)


def _checkpoint(path, seed, **meta):
    torch.manual_seed(seed)
    save_classifier(path, build_classifier("tiny_vgg", 3, (0.5,) * 3, (0.25,) * 3), **meta)
    return path


def test_a_judge_that_took_part_in_the_robust_model_is_refused(tmp_path, monkeypatch):
    # adv_train records the model it fine-tuned as ``source``, relative to the repository
    monkeypatch.chdir(tmp_path)
    parent = _checkpoint(tmp_path / "model.pt", 0)
    robust = _checkpoint(tmp_path / "at_0.02.pt", 1, source="model.pt", train_eps=0.02)
    sibling = _checkpoint(tmp_path / "at_0.04.pt", 2, source="model.pt", train_eps=0.04)
    second = _checkpoint(tmp_path / "second.pt", 3)
    copy = tmp_path / "copy_of_parent.pt"
    copy.write_bytes(parent.read_bytes())
    assert lineage(robust) == [robust.resolve(), parent.resolve()]
    check_independent(second, robust, "judge")  # trained from scratch: independent
    # run from elsewhere, the recorded relative source is found above the checkpoint
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert lineage(robust) == [robust.resolve(), parent.resolve()]
    assert not took_part(second, robust)
    for judge in (parent, robust, sibling, copy):
        assert took_part(judge, robust), judge.name
        with pytest.raises(CheckpointError, match="took part in producing the robust model"):
            check_independent(judge, robust, "judge")
