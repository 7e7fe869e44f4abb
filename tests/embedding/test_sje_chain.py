"""SJE per model of the attribute chain: seeds, splits, every image set, the store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.data.adversarial import MODES, ChainLayout, ModelEntry
from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.embedding.sje import class_embeddings, compatibility, fit_sje, normalise_features
from advinterp.embedding.sje_chain import sje_chain, write_sje_store
from advinterp.errors import StoreError
from advinterp.store import open_store

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

N, D, C, A, n = 30, 6, 3, 4, 5
LAYOUT = ChainLayout(
    (ModelEntry("standard", None, "m.pt"), ModelEntry("at_0.1", 0.1, "r/at_0.1.pt")), MODES, (0.1,)
)
PARAMS = {
    "center": True,
    "feature_norm": "l2",
    "margin": 1.0,
    "lr": 5.0,
    "epochs": 6,
    "batch_size": 4,
    "patience": 3,
}
ATTRIBUTES = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32)


def _world(seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % C
    split = np.array([TRAIN] * 18 + [VAL] * 6 + [TEST] * 6)
    centres = rng.normal(0, 1, (C, D))
    features = {}
    for key in ("standard", "at_0.1"):
        clean = centres[labels] + rng.normal(0, 0.6, (N, D))
        features[f"{key}/clean/features"] = clean.astype(np.float32)
        for mode in MODES:
            features[f"{key}/{mode}/eps_0.1/features"] = rng.normal(0, 1, (n, D)).astype(np.float32)
    return features, labels, split


def test_each_model_is_fit_on_its_train_features_with_seed_plus_k():
    features, labels, split = _world()
    result = sje_chain(features, LAYOUT, labels, split, ATTRIBUTES, **PARAMS, seed=10)
    phi = class_embeddings(ATTRIBUTES, center=True)
    torch.testing.assert_close(result.phi, phi)
    y = torch.as_tensor(labels)
    train, val, test = (torch.as_tensor(np.flatnonzero(split == s)) for s in (TRAIN, VAL, TEST))
    for k, key in enumerate(("standard", "at_0.1")):
        x = normalise_features(features[f"{key}/clean/features"], "l2")
        fit = fit_sje(
            x[train],
            y[train],
            phi,
            val_x=x[val],
            val_labels=y[val],
            **{p: PARAMS[p] for p in ("lr", "epochs", "batch_size", "patience", "margin")},
            generator=torch.Generator().manual_seed(10 + k),
        )
        got = result.models[key]
        assert torch.equal(got.fit.W, fit.W) and got.fit.history == fit.history
        scores = compatibility(x[test], fit.W, phi)
        assert got.test_accuracy == float((scores.argmax(1) == y[test]).float().mean())
        assert list(got.sets) == ["clean", "untargeted/eps_0.1", "targeted/eps_0.1"]
        adv = normalise_features(features[f"{key}/targeted/eps_0.1/features"], "l2")
        out = got.sets["targeted/eps_0.1"]
        np.testing.assert_array_equal(out.attributes, (adv @ fit.W).numpy())
        np.testing.assert_array_equal(out.scores, compatibility(adv, fit.W, phi).numpy())
        np.testing.assert_array_equal(out.pred, out.scores.argmax(1))
        assert out.pred.dtype == np.int64 and got.sets["clean"].attributes.shape == (N, A)
    assert result.metrics["at_0.1"] == {
        "best_epoch": result.models["at_0.1"].fit.best_epoch,
        "val_accuracy": result.models["at_0.1"].fit.best_val_accuracy,
        "test_accuracy": result.models["at_0.1"].test_accuracy,
    }
    assert [h["model"] for h in result.history] == [
        key for key, m in result.models.items() for _ in m.fit.history
    ]


def test_without_val_split_early_stopping_watches_train():
    features, labels, split = _world()
    split[split == VAL] = TRAIN
    result = sje_chain(features, LAYOUT, labels, split, ATTRIBUTES, **PARAMS, seed=0)
    x = normalise_features(features["standard/clean/features"], "l2")
    train = torch.as_tensor(np.flatnonzero(split == TRAIN))
    y = torch.as_tensor(labels)
    fit = fit_sje(
        x[train],
        y[train],
        result.phi,
        val_x=x[train],
        val_labels=y[train],
        **{p: PARAMS[p] for p in ("lr", "epochs", "batch_size", "patience", "margin")},
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(result.models["standard"].fit.W, fit.W)


def test_bad_features_are_refused_with_the_store_named():
    features, labels, split = _world()
    short = dict(features, **{"at_0.1/clean/features": features["at_0.1/clean/features"][:-1]})
    with pytest.raises(StoreError, match="feats.zarr: at_0.1/clean has 29 rows, the dataset 30"):
        sje_chain(short, LAYOUT, labels, split, ATTRIBUTES, **PARAMS, seed=0, origin="feats.zarr")
    broken = features["standard/targeted/eps_0.1/features"].copy()
    broken[0, 0] = np.nan
    nan = dict(features, **{"standard/targeted/eps_0.1/features": broken})
    with pytest.raises(StoreError, match="standard/targeted/eps_0.1/features: 1 NaN"):
        sje_chain(nan, LAYOUT, labels, split, ATTRIBUTES, **PARAMS, seed=0)


def test_store_round_trip(tmp_path):
    features, labels, split = _world()
    result = sje_chain(features, LAYOUT, labels, split, ATTRIBUTES, **PARAMS, seed=0)
    samples = {"rows": np.arange(n), "labels": labels[:n], "targets": (labels[:n] + 1) % C}
    write_sje_store(
        tmp_path / "sje.zarr",
        result,
        attrs={**LAYOUT.to_attrs(), "class_names": ["a", "b", "c"]},
        samples=samples,
        center=True,
        feature_norm="l2",
        chunk=4,
    )
    store = open_store(tmp_path / "sje.zarr")
    assert ChainLayout.from_attrs(store.attrs, "sje") == LAYOUT
    assert store.attrs["class_names"] == ["a", "b", "c"]
    np.testing.assert_array_equal(store["class_embeddings"][:], result.phi.numpy())
    np.testing.assert_array_equal(store["targets"][:], samples["targets"])
    model = result.models["at_0.1"]
    np.testing.assert_array_equal(store["at_0.1/W"][:], model.fit.W.numpy())
    assert store["at_0.1/W"].attrs["best_epoch"] == model.fit.best_epoch
    for rel, out in model.sets.items():
        for name in ("attributes", "scores", "pred"):
            np.testing.assert_array_equal(store[f"at_0.1/{rel}/{name}"][:], getattr(out, name))
