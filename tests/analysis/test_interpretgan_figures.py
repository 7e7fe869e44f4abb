"""Figures 3/5 rows and Table 1 as a plot: what each panel shows, checked on the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from advinterp.analysis.interpretgan_figures import explanation_rows, model_explanations_figure
from advinterp.analysis.vulnerability_figures import table1_figure

METHODS = ["saliency", "occlusion"]


def _arrays(n: int = 2, layers: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "adversarial": rng.uniform(0, 1, (n, 3, 4, 4)).astype(np.float32),
        "predictions": np.array([[1, 2], [0, 0]])[:n],
        "explanations": rng.uniform(0, 1, (n, 2, layers, 3, 4, 4)).astype(np.float32),
        "explanation_classes": np.arange(n * 2 * layers).reshape(n, 2, layers),
        "baselines": rng.normal(size=(n, 2, len(METHODS), 4, 4)).astype(np.float32),
    }


def test_explanation_rows_alternate_natural_and_adversarial():
    images = np.zeros((2, 3, 4, 4), np.float32)
    arrays = _arrays()
    rows = explanation_rows(images, np.array([1, 5]), arrays, METHODS)
    assert [r.label for r in rows] == ["natural", "adversarial"] * 2
    assert [r.image_title for r in rows] == ["y=1, f=1", "f=2", "y=5, f=0", "f=0"]
    images[1] = 0.5
    np.testing.assert_array_equal(rows[2].image, images[1])
    np.testing.assert_array_equal(rows[3].image, arrays["adversarial"][1])
    assert rows[3].explanation_titles == ["9", "10", "11"]
    np.testing.assert_array_equal(rows[2].explanations, arrays["explanations"][1, 0])
    np.testing.assert_array_equal(rows[1].baselines["occlusion"], arrays["baselines"][0, 1, 1])
    assert list(rows[0].baselines) == METHODS


def test_model_explanations_figure_layout_and_title():
    fig = model_explanations_figure(
        np.zeros((2, 3, 4, 4), np.float32),
        np.array([1, 5]),
        _arrays(),
        ["conv1", "fc1", "fc3"],
        METHODS,
        model="robust",
        eps=0.03,
        steps=40,
        dpi=40,
    )
    try:
        assert (
            fig._suptitle.get_text()
            == "InterpretGAN, robust model: natural and PGD-40 (eps 0.03) rows"
        )
        assert len(fig.axes) == 4 * (1 + 3 + 2)  # rows x (input, layers, baselines)
        assert fig.axes[1].get_title() == "conv1\n0"
        assert fig.dpi == 40
    finally:
        plt.close(fig)


def test_table1_figure_draws_each_models_columns():
    layers = {"l1": {"acc": 0.5, "vul": 0.5, "acc_natural_images": 0.9},
              "l2": {"acc": 0.25, "vul": 0.25, "acc_natural_images": 0.8}}  # fmt: skip
    metrics = {"natural": {"pooling": "max", "layers": layers}}
    fig = table1_figure(metrics, ["natural"], dpi=40)
    try:
        ax_acc, ax_vul = fig.axes
        pgd, control = ax_acc.get_lines()
        assert pgd.get_label() == "natural (max pool), PGD"
        np.testing.assert_allclose(pgd.get_ydata(), [50.0, 25.0])
        np.testing.assert_allclose(control.get_ydata(), [90.0, 80.0])
        heights = [b.get_height() for b in ax_vul.patches]
        assert heights == pytest.approx([50.0, 25.0])
        assert [t.get_text() for t in ax_acc.get_xticklabels()] == ["l1", "l2"]
    finally:
        plt.close(fig)
