"""Figure 5 and the closer-to-wrong curve from chain stores (tests/grounding/chain_stores.py).

Fooled images (SJE): standard untargeted 0, 2, 3; standard targeted 0, 1; the AT model
fools on image 2 only, and recovers 0, 3 (untargeted) and 0, 1 (targeted). Adversarial
attributes sit 80% of the way to the wrong class.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from advinterp.analysis.distance_study import TABLE_COLUMNS, distance_study
from advinterp.config.distances import DistancesConfig
from advinterp.data.adversarial import eps_key
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.selection import l2_rows
from tests.grounding.chain_stores import (
    EPS,
    LAYOUT,
    MODELS,
    MODES,
    chain_stores,
    memory_group,
)

N = {"untargeted": {"a": 3, "b": 2, "c": 3, "d": 1}, "targeted": {"a": 2, "b": 2, "c": 2, "d": 1}}


def _study(**cfg):
    attack, sje = chain_stores()
    return distance_study(attack, sje, DistancesConfig(**{"eps": 0.06, "bins": 4, **cfg}))


def test_panels_counts_and_the_wrong_class():
    r = _study()
    m = r.metrics
    assert (m["eps"], m["at_model"], m["classifier"], m["normalize"]) == (
        0.06,
        "at_0.06",
        "sje",
        "l2",
    )
    for mode, panels in N.items():
        assert {k: m[mode][k]["n"] for k in "abcd"} == panels
        assert m[mode]["c"]["fraction_d1_lt_d2"] == 1.0  # closer to the wrong class
        assert m[mode]["d"]["fraction_d1_lt_d2"] == 1.0
    assert m["closer_to_wrong_class"] == {"untargeted": 1.0, "targeted": 1.0}
    assert m["closer_to_wrong_class_at"] == {"untargeted": 1.0, "targeted": 1.0}
    # (c), untargeted, image 0 (row 1): Ẑ = [.2, .8, 0] scaled to unit norm; the one
    # most-changed attribute (20% of 3, rounded up) is attribute 1.
    t = r.table
    assert list(t.columns) == list(TABLE_COLUMNS)
    assert len(t) == sum(sum(p.values()) for p in N.values())
    row = t[(t["mode"] == "untargeted") & (t["panel"] == "c")].iloc[0]
    z1 = 0.8 / math.sqrt(0.68)
    assert row["row"] == 1
    assert row["d1"] == pytest.approx(1 - z1) and row["d2"] == pytest.approx(z1)


def test_curve_histograms_and_figures():
    r = _study()
    assert list(r.curve["eps"]) == list(EPS)
    assert list(r.curve["untargeted_c_n"]) == [3, 3] and (r.curve["targeted_d"] == 1.0).all()
    assert len(r.histograms) == 4
    assert r.histograms["untargeted_c_d1"].sum() == 3 and r.histograms["targeted_b_d2"].sum() == 2
    assert set(r.figures) == {"untargeted", "targeted"}
    assert all(isinstance(f, Figure) and len(f.axes) == 4 for f in r.figures.values())


def test_softmax_is_never_fooled_here():
    m = _study(classifier="softmax").metrics
    assert m["untargeted"]["c"] == {"n": 0, "fraction_d1_lt_d2": None}
    assert m["closer_to_wrong_class"] == {"untargeted": None, "targeted": None}


def test_refusals_before_computing():
    with pytest.raises(ParamError, match="distances.eps: 0.05"):
        _study(eps=0.05)
    with pytest.raises(ParamError, match="distances.at_model"):
        _study(at_model="at_0.5")
    attack, _ = chain_stores()
    _, sje = chain_stores()
    partial = memory_group(
        {k: sje[k][:] for k in ("rows", "labels", "class_embeddings")}, dict(sje.attrs)
    )
    with pytest.raises(StoreError, match="missing array 'standard/clean/attributes'"):
        distance_study(attack, partial, DistancesConfig(eps=0.06))


def _reading_stores(normalize_scale: float = 6.4) -> tuple:
    """Attack and SJE stores of 60 attacked images, 5 classes, 8 attributes, where SJE's
    predictions are its own (argmax of ⟨Ẑ, φ⟩, as the sje stage stores them) and the
    softmax fools every image into a class of its own choosing (true + 1 mod C)."""
    rng = np.random.default_rng(3)
    n, c, a = 60, 5, 8
    phi = l2_rows(rng.normal(size=(c, a))).astype(np.float32)
    true = np.arange(n) % c
    attack: dict[str, np.ndarray] = {"rows": np.arange(n), "labels": true}
    sje: dict[str, np.ndarray] = {"rows": np.arange(n), "labels": true, "class_embeddings": phi}
    for m in MODELS:
        # clean: near φ(true), so SJE gets every clean image right
        clean = normalize_scale * (phi[true] + 0.05 * rng.normal(size=(n, a)))
        attack[f"{m.key}/clean_pred"] = true
        sje[f"{m.key}/clean/pred"] = np.argmax(clean @ phi.T, axis=1)
        sje[f"{m.key}/clean/attributes"] = clean.astype(np.float32)
        for mode in MODES:
            for e in EPS:
                g = f"{m.key}/{mode}/{eps_key(e)}"
                adv = normalize_scale * (phi[true] + 1.5 * rng.normal(size=(n, a)))
                attack[f"{g}/images"] = np.zeros((n, 3, 4, 4), np.float32)
                attack[f"{g}/pred"] = (true + 1) % c
                sje[f"{g}/pred"] = np.argmax(adv @ phi.T, axis=1)
                sje[f"{g}/attributes"] = adv.astype(np.float32)
    assert (sje["standard/clean/pred"] == true).all()
    attrs = LAYOUT.to_attrs()
    return memory_group(attack, attrs), memory_group(sje, attrs)


@pytest.mark.parametrize("normalize", ["l2", "none"])
def test_sje_reading_is_closer_to_the_wrong_class_by_construction(normalize):
    # SJE names the nearest unit-norm φ, so on all attributes every SJE-fooled image is
    # closer to the wrong class: exactly 1, with or without scaling θ(x)W (all ||φ|| = 1).
    # The softmax names its own wrong class: the same measure is no longer 1.
    attack, sje = _reading_stores()
    cfg = DistancesConfig(eps=0.06, bins=4, normalize=normalize)
    m = distance_study(attack, sje, cfg).metrics["closer_to_wrong_class_by_reading"]
    by_sje, by_softmax = m["sje_names_wrong_class"], m["softmax_names_wrong_class"]
    assert by_sje["by_construction_on_all_attributes"] is True
    assert by_softmax["by_construction_on_all_attributes"] is False
    assert (by_sje["classifier"], by_softmax["classifier"]) == ("sje", "softmax")
    for mode in MODES:
        assert by_sje["all_attributes_n"][mode] > 20  # enough SJE-fooled images to mean it
        assert by_sje["all_attributes"][mode] == 1.0
        assert by_sje["all_attributes_at"][mode] == 1.0
        assert by_softmax["all_attributes_n"][mode] == 60  # the softmax fools every image
        assert by_softmax["all_attributes"][mode] < 0.9
        assert 0.0 <= by_sje["top_changed"][mode] <= 1.0
        assert by_sje["top_changed_n"][mode] == by_sje["all_attributes_n"][mode]


def test_readings_leave_the_histograms_at_the_configured_classifier():
    attack, sje = _reading_stores()
    for classifier, key in (
        ("sje", "sje_names_wrong_class"),
        ("softmax", "softmax_names_wrong_class"),
    ):
        r = distance_study(attack, sje, DistancesConfig(eps=0.06, bins=4, classifier=classifier))
        reading = r.metrics["closer_to_wrong_class_by_reading"][key]
        assert r.metrics["closer_to_wrong_class"] == reading["top_changed"]
        assert r.metrics["closer_to_wrong_class_at"] == reading["top_changed_at"]
        assert r.metrics["untargeted"]["c"]["n"] == reading["top_changed_n"]["untargeted"]
