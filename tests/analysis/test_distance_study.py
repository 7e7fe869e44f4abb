"""Figure 5 and the closer-to-wrong curve from chain stores (tests/grounding/chain_stores.py).

Fooled images (SJE): standard untargeted 0, 2, 3; standard targeted 0, 1; the AT model
fools on image 2 only, and recovers 0, 3 (untargeted) and 0, 1 (targeted). Adversarial
attributes sit 80% of the way to the wrong class.
"""

from __future__ import annotations

import math

import pytest
from matplotlib.figure import Figure

from advinterp.analysis.distance_study import TABLE_COLUMNS, distance_study
from advinterp.config.attributes import DistancesConfig
from advinterp.errors import ParamError, StoreError
from tests.grounding.chain_stores import EPS, chain_stores, memory_group

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
