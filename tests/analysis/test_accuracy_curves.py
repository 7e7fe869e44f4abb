"""Figure 4 tables: the long table's schema, the curves, the nearest-AT rule, the plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from advinterp.analysis.accuracy_curves import (
    CURVE_COLUMNS,
    TABLE_COLUMNS,
    accuracy_rows,
    figure4_curves,
    nearest_at_model,
    plot_figure4,
)

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
