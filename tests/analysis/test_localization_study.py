"""explain_eval's experiment on hand-built explanation sets: curves, Table 1, controls."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import zarr
from matplotlib.figure import Figure

from advinterp.analysis.localization_study import (
    ALL,
    localization_study,
    read_explained_sets,
)
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.random_baseline import expected_jaccard
from advinterp.store import write_array

H = W = 4


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _examples(e: int) -> dict[str, np.ndarray]:
    """``e`` copies of one explained 4x4 image whose attack region is the top-left 2x2.

    LIME's superpixels are the four image rows, rows 0 then 1 kept (sizes 4 and 8 px);
    saliency points exactly at the region, guided backprop at the bottom rows only.
    """
    region = np.zeros((H, W), np.uint8)
    region[:2, :2] = 1
    sal = np.zeros((3, H, W), np.float32)
    sal[0, :2, :2] = 1.0
    gbp = np.zeros((3, H, W), np.float32)
    gbp[1, 2:, :] = np.arange(8, dtype=np.float32).reshape(2, 4) + 1
    one = {
        "images": np.full((3, H, W), 0.5, np.float32),
        "rows": np.int64(3),
        "labels": np.int64(1),
        "region": region,
        "clean_index": np.int64(0),
        "saliency": sal,
        "guided_backprop": gbp,
        "random": np.random.default_rng(1).random((H, W), dtype=np.float32),
        "lime_segments": np.repeat(np.arange(4, dtype=np.int32), 4).reshape(H, W),
        "lime_top": np.array([0, 1, -1], np.int32),
        "lime_weights": np.array([0.5, 0.25, 0.0], np.float32),
        "lime_num_segments": np.int32(4),
    }
    return {k: np.stack([v] * e) for k, v in one.items()}


def _sets(ifgsm: bool = False) -> dict[str, dict[str, np.ndarray]]:
    clean = {k: v for k, v in _examples(1).items() if k not in ("region", "clean_index")}
    sets = {"localized": _examples(2), "clean": clean}
    if ifgsm:
        sets["ifgsm"] = _examples(1)
    return sets


def _study(**kw):
    args = {"max_superpixels": 2, "overlap_fraction": 0.25, "figure_examples": 2, "seed": 0}
    return localization_study(_sets(kw.pop("ifgsm", False)), **{**args, **kw})


def test_curves_ranks_and_controls_by_hand():
    study = _study(ifgsm=True)
    jac = study.jaccard.set_index("n")
    # n=1: saliency = C (J 1), LIME row 0 (2 of 6), guided backprop bottom rows (J 0).
    np.testing.assert_allclose(jac.loc[1, list(ALL[:3])], [1.0, 0.0, 2 / 6])
    np.testing.assert_allclose(jac.loc[2, list(ALL[:3])], [0.5, 0.0, 0.5])
    assert jac.loc[1, "random_expected"] == pytest.approx(expected_jaccard(4, 4, 16))
    assert jac["examples"].tolist() == [2, 2]
    assert list(study.jaccard.columns) == ["n", *ALL, "random_expected", "examples"]
    m = study.metrics
    # Ranks n=1: saliency 1, LIME 2, GBP 3; n=2: saliency and LIME tie at 1.5.
    assert m["mean_rank"]["saliency"]["jaccard"] == pytest.approx(1.25)
    assert m["mean_rank"]["lime"]["jaccard"] == pytest.approx(1.75)
    assert m["mean_rank"]["guided_backprop"]["jaccard"] == pytest.approx(3.0)
    assert set(m["mean_rank_with_random"]) == set(ALL)
    assert m["examples"] == 2 and m["explanations_ranked"] == 4
    assert m["mean_jaccard"]["saliency"] == pytest.approx(0.75)
    assert m["mean_best_jaccard"]["saliency"] == 1.0
    # The clean image has the same explanations here: the control equals the attack,
    # and every explanation overlaps its clean one completely.
    assert m["clean_control_mean_jaccard"] == m["mean_jaccard"]
    assert m["explanation_overlap_with_clean"] == {
        "top_fraction": 0.25,
        "localized": {name: 1.0 for name in ALL[:3]},
        "ifgsm": {name: 1.0 for name in ALL[:3]},
    }
    assert m["region_fraction_mean"] == 0.25 and m["lime_positive_superpixels_mean"] == 2.0


def test_per_example_table_one_row_per_example_size_and_explainer():
    table = _study().per_example
    assert len(table) == 2 * 2 * len(ALL)
    assert set(table["explainer"]) == set(ALL) and (table["region_pixels"] == 4).all()
    assert table.loc[table["explainer"] == "random", "rank_jaccard"].isna().all()
    sal = table[(table["explainer"] == "saliency") & (table["n"] == 1)]
    assert sal["jaccard"].tolist() == [1.0, 1.0] and sal["rank_jaccard"].tolist() == [1.0, 1.0]


def test_figures_are_drawn():
    figures = _study(ifgsm=True).figures
    assert set(figures) == {"examples", "curves", "sets"}
    assert all(isinstance(f, Figure) for f in figures.values())
    assert len(figures["examples"].axes) == 2 * (4 + len(ALL))  # two picks, 8 panels each
    assert len(figures["sets"].axes) == 3 * 4  # clean | IFGSM | localized, image + 3 maps


def test_more_superpixels_than_kept_is_a_param_error():
    with pytest.raises(ParamError, match=r"explain_eval.max_superpixels=4 .*\(explain.lime_top\)"):
        _study(max_superpixels=4)


def _store(sets: dict[str, dict[str, np.ndarray]]) -> zarr.Group:
    root = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    root.attrs["sets"] = list(sets)
    for name, arrays in sets.items():
        group = root.require_group(name)
        for key, values in arrays.items():
            dims = ("sample", "a", "b", "c")[: values.ndim]
            write_array(group, key, values, dims=dims, chunk_size=4)
    return root


def test_read_explained_sets_round_trip_and_checks():
    got = read_explained_sets(_store(_sets(ifgsm=True)), "ex.zarr")
    assert set(got) == {"localized", "clean", "ifgsm"}
    np.testing.assert_array_equal(got["localized"]["saliency"], _sets()["localized"]["saliency"])
    with pytest.raises(StoreError, match="ex.zarr: needs the 'localized' and 'clean' sets"):
        read_explained_sets(_store({"localized": _examples(1)}), "ex.zarr")
    broken = _sets()
    del broken["localized"]["lime_top"]
    with pytest.raises(StoreError, match="missing array 'localized/lime_top'"):
        read_explained_sets(_store(broken), "ex.zarr")
    broken = _sets()
    broken["clean"]["random"][0, 0, 0] = np.nan
    with pytest.raises(StoreError, match="'clean/random' holds NaN"):
        read_explained_sets(_store(broken), "ex.zarr")
    empty = _sets()
    empty["localized"] = {k: v[:0] for k, v in empty["localized"].items()}
    with pytest.raises(StoreError, match="no localized adversarial examples"):
        read_explained_sets(_store(empty), "ex.zarr")
