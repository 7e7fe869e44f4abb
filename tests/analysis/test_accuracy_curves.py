"""Figure 4: the long table from the chain stores, the curves, the nearest-AT rule, the
headline numbers, the plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from advinterp.analysis.accuracy_curves import (
    CURVE_COLUMNS,
    TABLE_COLUMNS,
    accuracy_rows,
    chain_accuracy_table,
    figure4_accuracy,
    figure4_curves,
    headline,
    nearest_at_model,
    plot_figure4,
)
from advinterp.data.adversarial import MODES, ChainLayout, ModelEntry
from advinterp.errors import StoreError
from advinterp.store import create_group, write_array

LABELS = np.array([0, 1, 2, 3])


def _rows(model, train_eps, clean_ok, adv_ok):
    """Predictions right on the first ``k`` images (k from the arguments)."""

    def pred(k):
        p = LABELS.copy()
        p[k:] = (p[k:] + 1) % 4
        return p

    adversarial = {
        (mode, eps): {"softmax": pred(k), "sje": pred(min(k + 1, 4))}
        for mode in ("untargeted", "targeted")
        for eps, k in zip((0.01, 0.06), adv_ok, strict=True)
    }
    return accuracy_rows(
        model=model,
        train_eps=train_eps,
        labels=LABELS,
        clean={"softmax": pred(clean_ok), "sje": pred(clean_ok - 1)},
        adversarial=adversarial,
    )


@pytest.fixture
def table() -> pd.DataFrame:
    records = (
        _rows("standard", None, 4, (2, 0))
        + _rows("at_0.01", 0.01, 3, (3, 1))
        + _rows("at_0.06", 0.06, 2, (2, 2))
    )
    return pd.DataFrame(records, columns=list(TABLE_COLUMNS))


def test_long_table_schema(table):
    assert tuple(table.columns) == TABLE_COLUMNS
    # per model: 2 modes x (2 clean + 2 eps x 2 classifiers) rows
    assert len(table) == 3 * 2 * (2 + 4)
    assert set(table["images"]) == {"clean", "adversarial"}
    assert set(table["classifier"]) == {"softmax", "sje"}
    assert (table.loc[table["images"] == "clean", "eps"] == 0.0).all()
    assert table["accuracy"].between(0, 1).all() and (table["n"] == 4).all()
    std = table[table["model"] == "standard"]
    assert std["train_eps"].isna().all()
    got = std[(std["mode"] == "targeted") & (std["eps"] == 0.01) & (std["classifier"] == "sje")]
    assert got["accuracy"].tolist() == [0.75]  # 3 of 4 right


def test_curves_columns_values_and_nearest_at(table):
    c = figure4_curves(table, "untargeted")
    assert tuple(c.columns) == CURVE_COLUMNS
    assert c["eps"].tolist() == [0.01, 0.06]
    assert c["at_model"].tolist() == ["at_0.01", "at_0.06"]
    np.testing.assert_allclose(c["softmax_clean"], [1.0, 1.0])
    np.testing.assert_allclose(c["sje_clean"], [0.75, 0.75])
    np.testing.assert_allclose(c["softmax_adv"], [0.5, 0.0])
    np.testing.assert_allclose(c["sje_adv"], [0.75, 0.25])
    np.testing.assert_allclose(c["softmax_clean_at"], [0.75, 0.5])
    np.testing.assert_allclose(c["softmax_adv_at"], [0.75, 0.5])
    np.testing.assert_allclose(c["sje_adv_at"], [1.0, 0.75])


def test_without_at_models_the_at_columns_are_empty(table):
    c = figure4_curves(table[table["model"] == "standard"], "targeted")
    assert c[["softmax_clean_at", "sje_adv_at"]].isna().all().all()
    assert (c["at_model"] == "").all()


def test_nearest_at_model_ties_go_to_the_larger_eps():
    models = {"at_0.02": 0.02, "at_0.06": 0.06}
    assert nearest_at_model(0.01, models) == "at_0.02"
    assert nearest_at_model(0.04, models) == "at_0.06"  # equidistant
    assert nearest_at_model(0.12, models) == "at_0.06"
    assert nearest_at_model(0.05, {}) is None


def test_plot_has_one_panel_per_mode(table):
    curves = {m: figure4_curves(table, m) for m in ("untargeted", "targeted")}
    fig = plot_figure4(curves, dpi=30)
    try:
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in panels] == ["untargeted IFGSM", "targeted IFGSM"]
        assert len(panels[0].lines) == 8  # 4 image sets x (softmax, SJE)
    finally:
        plt.close(fig)


def test_headline_reads_the_paper_eps(table):
    curves = {m: figure4_curves(table, m) for m in ("untargeted", "targeted")}
    h = headline(table, curves)
    assert h["n"] == 4
    assert h["clean"]["standard/softmax"] == 1.0 and h["clean"]["at_0.06/sje"] == 0.25
    # Only 0.01 and 0.06 of HEADLINE_EPS are in the table.
    assert list(h["untargeted"]) == ["eps_0.01", "eps_0.06"]
    assert h["untargeted"]["eps_0.06"] == {
        "softmax_adv": 0.0,
        "sje_adv": 0.25,
        "softmax_adv_at": 0.5,
        "sje_adv_at": 0.75,
    }
    std = table[table["model"] == "standard"]
    no_at = headline(std, {"targeted": figure4_curves(std, "targeted")})
    assert no_at["targeted"]["eps_0.01"]["sje_adv_at"] is None


LAYOUT = ChainLayout(
    (ModelEntry("standard", None, "m.pt"), ModelEntry("at_0.06", 0.06, "r.pt")), MODES, (0.06,)
)


def _chain_stores(tmp_path, layout=LAYOUT):
    """Feature and SJE stores over N = 6 dataset rows, rows 1, 3, 4 attacked.

    Softmax is right on the clean rows 1 and 3, SJE on all; on x̂ softmax is always
    wrong and SJE right on the first image only.
    """
    labels_all = np.array([0, 1, 2, 0, 1, 2])
    rows = np.array([1, 3, 4])
    labels = labels_all[rows]
    onehot = np.eye(3, dtype=np.float32)
    clean_pred = labels_all.copy()
    clean_pred[4] = 0
    feats = create_group(tmp_path / "f.zarr", layout.to_attrs())
    sje = create_group(tmp_path / "s.zarr", layout.to_attrs())
    for g in (feats, sje):
        write_array(g, "rows", rows, dims=("sample",), chunk_size=4)
        write_array(g, "labels", labels, dims=("sample",), chunk_size=4)
    for m in layout.models:
        write_array(
            feats, f"{m.key}/clean/logits", onehot[clean_pred], dims=("s", "c"), chunk_size=4
        )
        write_array(sje, f"{m.key}/clean/pred", labels_all, dims=("s",), chunk_size=4)
        for *_, path in layout.adversarial_sets():
            if path.startswith(m.key + "/"):
                wrong = (labels + 1) % 3
                write_array(feats, f"{path}/logits", onehot[wrong], dims=("s", "c"), chunk_size=4)
                sje_pred = np.where(np.arange(3) == 0, labels, wrong)
                write_array(sje, f"{path}/pred", sje_pred, dims=("s",), chunk_size=4)
    return feats, sje


def test_chain_accuracy_table_by_hand(tmp_path):
    feats, sje = _chain_stores(tmp_path)
    t = chain_accuracy_table(feats, sje, LAYOUT, "f.zarr")
    assert tuple(t.columns) == TABLE_COLUMNS and (t["n"] == 3).all()
    acc = t.set_index(["model", "mode", "images", "classifier"])["accuracy"]
    assert acc[("standard", "targeted", "clean", "softmax")] == pytest.approx(2 / 3)
    assert acc[("at_0.06", "untargeted", "clean", "sje")] == 1.0
    assert acc[("standard", "untargeted", "adversarial", "softmax")] == 0.0
    assert acc[("at_0.06", "targeted", "adversarial", "sje")] == pytest.approx(1 / 3)


def test_figure4_accuracy_whole_and_refusals(tmp_path):
    feats, sje = _chain_stores(tmp_path)
    result = figure4_accuracy(feats, sje, features_origin="f", sje_origin="s", dpi=30)
    try:
        assert list(result.curves) == list(MODES)
        assert result.curves["targeted"]["at_model"].tolist() == ["at_0.06"]
        assert result.metrics["untargeted"]["eps_0.06"]["sje_adv_at"] == pytest.approx(1 / 3)
        assert len(result.table) == 2 * 2 * (2 + 2)
        assert len(result.figure.axes) == 2
    finally:
        plt.close(result.figure)

    other = ChainLayout(LAYOUT.models, MODES, (0.12,))
    _, sje_other = _chain_stores(tmp_path / "other", other)
    with pytest.raises(StoreError, match="s: made from other adversarial examples than f"):
        figure4_accuracy(feats, sje_other, features_origin="f", sje_origin="s", dpi=30)
    del sje["at_0.06/targeted/eps_0.06/pred"]
    with pytest.raises(StoreError, match="s: missing array 'at_0.06/targeted/eps_0.06/pred'"):
        figure4_accuracy(feats, sje, features_origin="f", sje_origin="s", dpi=30)
    one_mode = ChainLayout(LAYOUT.models, ("untargeted",), (0.06,))
    feats1, sje1 = _chain_stores(tmp_path / "one", one_mode)
    with pytest.raises(StoreError, match="expected attack modes"):
        figure4_accuracy(feats1, sje1, features_origin="f", sje_origin="s", dpi=30)
