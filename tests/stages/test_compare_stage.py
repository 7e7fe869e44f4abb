"""The ``compare`` stage on the tiny world: every method's map of the same examples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from advinterp.comparison.examples import GROUPS
from advinterp.comparison.registry import DELTA, METHOD_NAMES, METHODS, REFERENCES
from advinterp.comparison.scores import top_share
from advinterp.store import open_store
from tests.stages.stage_world import World


@pytest.fixture(scope="module")
def compared(tiny_world: World) -> World:
    return tiny_world


def test_every_method_maps_the_same_examples(compared: World) -> None:
    store = open_store(compared.path("compare", "maps"))
    n = store["rows"].shape[0]
    assert n >= 1
    assert store.attrs["methods"] == list(METHOD_NAMES)
    for name in METHOD_NAMES:
        m = store[f"maps/{name}"][:]
        assert m.shape == (n, *store["clean"].shape[-2:])
        assert np.isfinite(m).all() and (m >= 0).all(), name
    # the shared examples are the attack stage's: clean rows of the dataset, fooled images
    dataset = open_store(compared.path("compare", "dataset"))
    clean = dataset["images"].get_orthogonal_selection((np.sort(store["rows"][:]),))
    order = np.argsort(store["rows"][:], kind="stable")
    np.testing.assert_array_equal(clean, store["clean"][:][order])
    groups = [GROUPS[c] for c in store["group"][:]]
    assert set(groups) <= set(GROUPS)
    # |δ| as stored is the images' difference, and its reference set is top_share of it
    delta = np.abs(store["adversarial"][:].astype(np.float64) - store["clean"][:]).sum(1)
    np.testing.assert_allclose(store["delta"][:], delta, rtol=1e-6, atol=1e-7)
    frac = store.attrs["params"]["compare"]["top_fraction"]
    for i in range(n):
        np.testing.assert_array_equal(
            store["references/perturbation"][i], top_share(delta[i], frac)
        )
    # class-level a2e maps: equal for examples fooled into the same class
    a2e, adv_class = store["maps/a2e_class"][:], store["adv_class"][:]
    for c in np.unique(adv_class):
        same = np.flatnonzero(adv_class == c)
        assert all(np.array_equal(a2e[same[0]], a2e[j]) for j in same)


def test_scores_and_metrics_carry_the_random_expectation(compared: World) -> None:
    summary = pd.read_csv(compared.path("compare", "summary"))
    assert set(summary["reference"]) <= set(REFERENCES)
    assert {"mean", "sd", "n", "random", "lift", "above_random"} <= set(summary.columns)
    allg = summary[summary["group"] == "all"]
    assert set(allg["method"]) == set(METHOD_NAMES)
    assert ((allg["mean"] >= 0) & (allg["mean"] <= 1)).all()
    assert ((allg["random"] > 0) & (allg["random"] < 1)).all()
    metrics = json.loads(compared.path("compare", "metrics").read_text())
    for ref, by_method in metrics["overlap"].items():
        assert ref in REFERENCES and set(by_method) == set(METHOD_NAMES)
        assert all(v["random"] is not None for v in by_method.values())
    agreement = pd.read_csv(compared.path("compare", "agreement"))
    names = [DELTA, *METHOD_NAMES]
    assert len(agreement) == len(names) ** 2
    diag = agreement[agreement["a"] == agreement["b"]]
    assert np.allclose(diag["jaccard"], 1.0)
    markdown = compared.path("compare", "markdown").read_text()
    assert all(m.label in markdown for m in METHODS)
    for flag in ("figure_maps", "figure_scores", "figure_agreement"):
        assert compared.path("compare", flag).read_bytes()[:4] == b"\x89PNG"
