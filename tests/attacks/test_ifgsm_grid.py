"""IFGSM over the eps grid: targets, step sizes, batching, outcomes, shards and metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.ifgsm_grid import (
    AttackPlan,
    attack_arrays,
    attack_grid,
    attack_metrics,
    clean_array,
    clean_shard_setup,
    ifgsm_batches,
    random_targets,
    relative_to_clean,
    step_sizes,
)
from advinterp.config.dataset import SyntheticConfig
from advinterp.data.artifact import open_dataset, write_dataset
from advinterp.data.dataset import TEST, split_rows
from advinterp.data.synthetic import generate
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.predict import predict
from advinterp.store import (
    MAX_LEVELS,
    create_group,
    decode,
    decoded,
    encode,
    fill_shards,
    open_store,
    write_shard,
)
from tests.attacks.toy import CLASSES, held_out, standard_toy_model

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

EPS = (0.0, 0.02, 0.1)
ALPHAS = step_sizes(EPS, 3, None)


def _half_test_dataset(images_per_class: int):
    """The 16 px synthetic set (4 classes, 2 families), half of it the test split."""
    cfg = SyntheticConfig(num_classes=4, images_per_class=images_per_class, families=2, clutter=1)
    return generate(cfg, 16, seed=0, val_fraction=0.0, test_fraction=0.5)


def test_random_targets_never_the_label_seeded_and_by_formula():
    labels = np.arange(200) % 5
    t = random_targets(labels, 5, seed=1)
    assert t.dtype == np.int64 and (t != labels).all()
    assert set(t[labels == 0]) == {1, 2, 3, 4}  # every other class is drawn
    np.testing.assert_array_equal(t, random_targets(labels, 5, seed=1))
    assert not np.array_equal(t, random_targets(labels, 5, seed=2))
    shift = np.random.default_rng([1, 3]).integers(1, 5, size=200)
    np.testing.assert_array_equal(t, (labels + shift) % 5)


def test_step_sizes_default_and_fixed():
    assert step_sizes((0.01, 0.04), 10, None) == pytest.approx(
        {"eps_0.01": 0.0025, "eps_0.04": 0.01}
    )
    assert step_sizes((0.01, 0.04), 10, 0.003) == {"eps_0.01": 0.003, "eps_0.04": 0.003}


def test_plan_selects_a_stratified_test_subset_with_targets():
    ds = _half_test_dataset(10)
    settings = {"eps": (0.01, 0.04), "steps": 10, "step_size": None, "batch_size": 3}
    plan = AttackPlan.select(ds.index, **settings, max_images=8, seed=5)
    np.testing.assert_array_equal(plan.rows, split_rows(ds.index, TEST, 8, 5))
    assert plan.n == 8 and (np.diff(plan.rows) > 0).all()
    assert (ds.index.split[plan.rows] == TEST).all()
    assert np.bincount(plan.labels, minlength=4).tolist() == [2, 2, 2, 2]
    np.testing.assert_array_equal(plan.targets, random_targets(plan.labels, 4, 5))
    assert plan.alphas == step_sizes((0.01, 0.04), 10, None) and plan.num_classes == 4
    whole = AttackPlan.select(ds.index, **settings, max_images=None, seed=5)
    np.testing.assert_array_equal(whole.rows, np.flatnonzero(ds.index.split == TEST))


@pytest.mark.parametrize("targeted", [False, True])
def test_ifgsm_batches_equal_one_batch(targeted):
    model = standard_toy_model()
    x, y = held_out(7)
    t = (y + 1) % CLASSES if targeted else None
    whole = ifgsm(model, x, y, eps=0.05, steps=3, step_size=0.02, targets=t)
    batched = ifgsm_batches(model, x, y, t, eps=0.05, steps=3, step_size=0.02, batch_size=3)
    torch.testing.assert_close(batched, whole)


def test_attack_grid_outputs_budget_and_success():
    model = standard_toy_model()
    x, y = held_out(6)
    t = (y + 2) % CLASSES
    out = attack_grid(model, x, y, t, eps=EPS, steps=3, alphas=ALPHAS, batch_size=4)
    assert len(out) == 1 + 2 * len(EPS) * 3
    np.testing.assert_array_equal(out["clean_pred"], predict(model, x, 4).numpy())
    for mode in ("untargeted", "targeted"):
        for e in EPS:
            rel = f"{mode}/eps_{e:g}"
            images, pred, success = (out[f"{rel}/{k}"] for k in ("images", "pred", "success"))
            assert images.shape == x.shape and images.dtype == np.float32
            assert np.abs(images - x.numpy()).max() <= e + 1e-6
            assert pred.dtype == np.int64 and success.dtype == bool
            np.testing.assert_array_equal(pred, predict(model, torch.as_tensor(images), 4).numpy())
            goal = pred == t.numpy() if mode == "targeted" else pred != y.numpy()
            np.testing.assert_array_equal(success, goal)
    np.testing.assert_array_equal(out["untargeted/eps_0/images"], x.numpy())  # eps 0: no change
    # At eps 0.1 the toy model is fooled on most images (it is at 0.02 already).
    assert out["untargeted/eps_0.1/success"].mean() >= 0.5


def test_attack_grid_refuses_images_outside_the_budget(monkeypatch):
    import advinterp.attacks.ifgsm_grid as grid

    monkeypatch.setattr(grid, "ifgsm_batches", lambda model, x, *a, **k: x + 0.5)
    x, y = held_out(2)
    with pytest.raises(RuntimeError, match="left the eps=0.02 ball"):
        attack_grid(
            standard_toy_model(), x, y, y, eps=(0.02,), steps=1, alphas=ALPHAS, batch_size=2
        )


def test_shard_setup_attacks_the_given_rows_and_arrays_hold_them(tmp_path):
    ds = _half_test_dataset(3)
    write_dataset(tmp_path / "dataset.zarr", ds.index, ds, 4, {})
    save_classifier(tmp_path / "model.pt", standard_toy_model())
    rows = np.array([1, 4, 5, 9, 10])
    labels = ds.index.labels[rows].astype(np.int64)
    targets = random_targets(labels, 4, 0)
    plan = AttackPlan(rows, labels, targets, 4, EPS, 3, ALPHAS, 2)
    job = plan.job(tmp_path / "dataset.zarr", tmp_path / "model.pt", "cpu")
    assert job.setup == "advinterp.attacks.ifgsm_grid:attack_shard_setup"  # workers import it
    compute = job.compute()
    shard = compute(slice(1, 4))
    images = torch.as_tensor(open_dataset(tmp_path / "dataset.zarr")["images"].oindex[rows[1:4]])
    model = load_classifier(tmp_path / "model.pt")
    expected = attack_grid(
        model,
        images,
        torch.as_tensor(labels[1:4]),
        torch.as_tensor(targets[1:4]),
        eps=EPS,
        steps=3,
        alphas=ALPHAS,
        batch_size=2,
    )
    assert shard.keys() == expected.keys()
    for k, v in expected.items():
        np.testing.assert_array_equal(shard[k], v, err_msg=k)

    # The store: clean images first (the reference), then every shard of the attack,
    # written through write_shard as the stage does; the images decode bitwise to the
    # attack's output, and the store passes open_store's chunk check.
    root = create_group(tmp_path / "attack.zarr")
    clean = clean_array(root, len(rows), 16, chunk=4)
    fill_shards({"clean": clean}, clean_shard_setup(str(tmp_path / "dataset.zarr"), rows), 5, 4)
    group = root.require_group("standard")
    arrays = attack_arrays(group, len(rows), 16, EPS, ALPHAS, chunk=4)
    assert arrays.keys() == expected.keys()
    assert dict(group["targeted/eps_0.1"].attrs) == {
        "eps": 0.1,
        "mode": "targeted",
        "step_size": ALPHAS["eps_0.1"],
    }
    for sl in (slice(0, 4), slice(4, 5)):
        write_shard(arrays, compute(sl), sl)
    store = open_store(
        tmp_path / "attack.zarr", {"clean": 4, "standard/targeted/eps_0.1/images": 4}
    )
    np.testing.assert_array_equal(store["clean"][1:4], images.numpy())
    for k, v in expected.items():
        if k.endswith("/images"):
            stored = decoded(store, f"standard/{k}")
            assert stored.shape == (5, 3, 16, 16) and stored.dtype == np.float32
            np.testing.assert_array_equal(stored[1:4].view(np.uint32), v.view(np.uint32), k)


@pytest.mark.parametrize(
    ("eps", "steps", "escaped"),
    [
        (0.0, 10, 0.0),
        (0.0025, 10, 0.01),
        (0.02, 10, 0.01),
        (0.12, 10, 0.01),
        (0.02, 7, 0.01),  # eps not a multiple of α: steps back from the edge are levels too
        (0.02, 40, 0.1),  # 33 multiples of α: the innermost do not fit the 32 codes
    ],
)
def test_relative_to_clean_fits_the_codes_and_predicts_ifgsm(eps, steps, escaped):
    alpha = step_sizes((eps,), steps, None)[f"eps_{eps:g}"]
    rel = relative_to_clean(eps, alpha)
    assert rel.reference == "clean"
    assert len(rel.offsets) + len(rel.constants) <= MAX_LEVELS
    assert {0.0, 1.0} <= set(rel.constants)
    if eps:
        assert {float(np.float32(eps)), -float(np.float32(eps))} <= set(rel.offsets)
        assert max(abs(o) for o in rel.offsets) == float(np.float32(eps))
    # Real IFGSM images round-trip bitwise, and almost every pixel is predicted to within
    # the residual a word holds (escaped pixels are stored whole).
    x, y = held_out(12)
    adv = ifgsm(standard_toy_model(), x, y, eps=eps, steps=steps, step_size=alpha)
    adv_np, x_np = adv.numpy(), x.numpy()
    words, planes = encode(adv_np, x_np, rel)
    np.testing.assert_array_equal(
        decode(words, x_np, rel, planes).view(np.uint32), adv_np.view(np.uint32)
    )
    assert (words >= 0xFFE0).mean() <= escaped


def test_attack_metrics_by_hand():
    labels = np.array([0, 1, 2, 3])
    outputs = {"clean_pred": np.array([0, 1, 2, 0])}
    for mode in ("untargeted", "targeted"):
        outputs[f"{mode}/eps_0.1/pred"] = np.array([0, 0, 0, 0])
        outputs[f"{mode}/eps_0.1/success"] = np.array([False, True, True, True])
    m = attack_metrics(outputs, labels, (0.1,))
    assert m == {
        "clean_accuracy": 0.75,
        "untargeted": {"eps_0.1": {"success_rate": 0.75, "accuracy": 0.25}},
        "targeted": {"eps_0.1": {"success_rate": 0.75, "accuracy": 0.25}},
    }
