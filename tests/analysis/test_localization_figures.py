"""Göpfert et al.'s figures: what is picked and how it is laid out."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from advinterp.analysis.localization import LocalizationResult
from advinterp.analysis.localization_figures import figure3, normalise, sets_figure

NAMES = ("saliency", "guided_backprop", "lime")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_normalise_by_the_maximum_only_when_positive():
    np.testing.assert_allclose(normalise(np.array([1.0, 4.0, 2.0])), [0.25, 1.0, 0.5])
    zeros = np.zeros(3)
    assert normalise(zeros) is zeros and normalise(np.zeros(0)).size == 0


def _set(n: int, rows: list[int], clean_index: list[int] | None = None) -> dict:
    out = {"images": np.zeros((n, 3, 4, 4), np.float32), "rows": np.array(rows)}
    if clean_index is not None:
        out["clean_index"] = np.array(clean_index)
    return out


def _maps(n: int) -> dict[str, np.ndarray]:
    return {x: np.arange(n * 16, dtype=float).reshape(n, 4, 4) for x in NAMES}


def test_sets_figure_rows_with_an_ifgsm_example_first():
    sets = {
        "localized": _set(3, [5, 5, 9], clean_index=[0, 0, 1]),
        "ifgsm": _set(1, [9], clean_index=[1]),
        "clean": _set(2, [5, 9]),
    }
    maps = {"localized": _maps(3), "ifgsm": _maps(1), "clean": _maps(2)}
    fig = sets_figure(sets, maps, NAMES, n_examples=5)
    axes = np.array(fig.axes).reshape(2, 12)  # 2 images, 3 entries of image + 3 maps
    assert [a.get_ylabel() for a in axes[:, 0]] == ["row 9", "row 5"]
    assert [axes[0, c].get_title() for c in (0, 4, 8)] == ["clean", "full-image IFGSM", "localized"]
    assert sets_figure(sets, maps, NAMES, n_examples=1).axes[0].get_ylabel() == "row 9"


def test_figure3_shows_each_pick_at_lime_s_best_size():
    E, H = 3, 4
    seg = np.repeat(np.arange(4), 4).reshape(H, H)
    loc = {
        **_set(E, [1, 2, 3], clean_index=[0, 0, 0]),
        "region": np.ones((E, H, H), np.uint8),
        "saliency": np.ones((E, 3, H, H)),
        "guided_backprop": np.ones((E, 3, H, H)),
        "random": np.ones((E, H, H)),
        "lime_segments": np.stack([seg] * E),
        "lime_top": np.array([[0, 1], [1, -1], [2, 3]]),
    }
    jac = np.zeros((E, 2, 4))
    jac[:, :, 2] = [[0.1, 0.6], [0.3, np.nan], [0.9, 0.2]]
    result = LocalizationResult(
        ("saliency", "guided_backprop", "lime", "random"),
        np.array([[4, 8], [4, 4], [4, 8]]),
        np.array([2, 1, 2]),
        jac,
        jac,
    )
    fig = figure3(loc, _set(1, [7]), result, np.zeros((H, H)), n_examples=2)
    axes = np.array(fig.axes).reshape(2, 8)  # picks 0 and 2 (spread over the set)
    assert [a.get_ylabel() for a in axes[:, 0]] == ["row 1, n=2", "row 3, n=1"]
    assert axes[0, 6].get_title() == "LIME\nJ=0.60"
