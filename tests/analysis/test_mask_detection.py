"""Nguyen et al. Tables 1-4 from LAN masks: hand-made predictions, stores, one full run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from advinterp.analysis.mask_detection import (
    NO_IFGSM,
    Benign,
    Evaluated,
    ExampleSet,
    benign_side,
    chain_example_sets,
    detection_tables,
    figure3_panels,
    mask_detection,
    set_rows,
    shown_curves,
    write_roc_curves,
)
from advinterp.attacks.suite import Fgsm
from advinterp.config.lan_detect import LanDetectConfig
from advinterp.data.adversarial import ChainLayout, ModelEntry
from advinterp.explainers.lan import attention_masks, build_lan
from advinterp.models.mask_classifier import MaskClassifier, predict_proba
from advinterp.store import create_group, write_array
from tests.attacks.lan_toy import toy_dataset
from tests.attacks.toy import standard_toy_model

CPU = torch.device("cpu")
NAN = np.nan


def _benign(good=(3,)) -> Benign:
    """Test rows 3, 4, 5 of six; benign sets drawn in the order 5, 3, 4."""
    return Benign(
        test_rows=np.array([3, 4, 5]),
        f1=np.array([-1, -1, -1, 0, 2, 2]),
        f2=np.array([-1, -1, -1, 0, 1, 0]),
        score=np.array([NAN, NAN, NAN, 0.3, 0.7, 0.7]),
        order=np.array([5, 3, 4]),
        good_masks=np.array(good),
    )


def _set(name="direct/fgsm", rows=(3, 4, 4), f1=(1, 0, 2)) -> ExampleSet:
    rows_a = np.array(rows)
    labels = np.array([0, 1, 2, 0, 1, 2])[rows_a]
    return ExampleSet(
        name, rows_a, labels, np.array(f1), np.zeros((len(rows), 3, 2, 2), np.float32)
    )


def test_benign_side_by_hand():
    labels = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    b = benign_side(np.array([3, 4, 5]), np.array([0, 2, 2]), proba, labels, seed=4)
    np.testing.assert_array_equal(b.f1, [-1, -1, -1, 0, 2, 2])
    np.testing.assert_array_equal(b.f2, [-1, -1, -1, 0, 1, 0])
    np.testing.assert_allclose(b.score, [NAN, NAN, NAN, 0.3, 0.7, 0.7])
    np.testing.assert_array_equal(b.good_masks, [3, 4])  # row 5's mask is classed 0, not 2
    np.testing.assert_array_equal(b.order, np.random.default_rng(4).permutation([3, 4, 5]))


def test_set_rows_by_hand():
    ex = _set()
    f2 = np.array([0, 1, 2])
    rows, (fpr, tpr, auc) = set_rows(ex, f2, np.array([0.9, 0.2, 0.8]), _benign())
    # All: benign rows 5, 3, 4 (f1 2, 0, 2; f2 0, 0, 1): only row 3 agrees.
    assert rows["all"] == {
        "n_adversarial": 3,
        "n_benign": 3,
        "mask_class_kept": pytest.approx(2 / 3),  # f2 of the benign masks: 0, 1, 1
        "true_positive": pytest.approx(2 / 3),  # f1 1, 0, 2 vs f2 0, 1, 2
        "true_negative": pytest.approx(1 / 3),
        "recovery": pytest.approx(2 / 3),  # labels 0, 1, 1
        "auc": pytest.approx(6 / 9),  # 0.9 and 0.8 beat all of 0.7, 0.3, 0.7; 0.2 none
    }
    assert auc == pytest.approx(6 / 9) and fpr[-1] == 1.0 and tpr[-1] == 1.0
    # Good masks = row 3 only: one adversarial example, benign set {3}.
    assert rows["good_masks"] == {
        "n_adversarial": 1,
        "n_benign": 1,
        "mask_class_kept": 1.0,
        "true_positive": 1.0,
        "true_negative": 1.0,
        "recovery": 1.0,
        "auc": 1.0,
    }


def test_tables_gather_rows_by_setting():
    b = _benign()
    labels = np.array([0, 1, 2, 0, 1, 2])
    row = {
        "n_adversarial": 2,
        "n_benign": 2,
        "mask_class_kept": 0.5,
        "true_positive": 1.0,
        "true_negative": 0.5,
        "recovery": 0.0,
        "auc": 0.75,
    }
    rows = {
        n: {"all": row, "good_masks": {**row, "recovery": 1.0}}
        for n in ("direct/fgsm", "transfer/cw", "ifgsm/untargeted/eps_0.01")
    }
    m = detection_tables(rows, b, labels, ifgsm_evaluated=True)
    assert m["f1_test_accuracy"] == pytest.approx(2 / 3)  # f1 0, 2, 2 vs labels 0, 1, 2
    assert m["f2_test_accuracy"] == pytest.approx(2 / 3)
    assert m["benign_true_negative_all_test"] == pytest.approx(1 / 3)
    rates = {"true_positive": 1.0, "true_negative": 0.5, "n_adversarial": 2, "n_benign": 2}
    assert m["table1_mask_class_kept"] == dict.fromkeys(rows, 0.5)
    assert m["table2_direct"] == {"fgsm": rates}
    assert m["table3_transfer"] == {"cw": rates}
    assert m["table4_good_masks"] == {
        n: {**rates, "recovery": 1.0} for n in ("direct/fgsm", "transfer/cw")
    }
    assert m["auc"] == dict.fromkeys(rows, 0.75)
    assert m["ifgsm"] == {"untargeted/eps_0.01": {**rates, "mask_class_kept": 0.5, "auc": 0.75}}
    assert detection_tables(rows, b, labels, ifgsm_evaluated=False)["ifgsm"] == NO_IFGSM


def test_roc_figure_shows_the_papers_ifgsm_budgets_only():
    c = (np.zeros(1), np.zeros(1), None)
    names = ["direct/fgsm", "ifgsm/untargeted/eps_0.02", "ifgsm/untargeted/eps_0.06"]
    names += ["ifgsm/targeted/eps_0.06", "transfer/cw"]
    assert list(shown_curves(dict.fromkeys(names, c))) == [
        "direct/fgsm",
        "transfer/cw",
        "ifgsm/untargeted/eps_0.06",
    ]


def test_figure3_picks_images_fooled_by_most_attacks():
    b = _benign()
    labels = np.array([0, 1, 2, 0, 1, 2])
    names = ["zero", "one", "two"]
    imgs = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    fgsm = Evaluated(_set("direct/fgsm", (5, 4), (1, 0)), imgs[:2] + 10, np.array([2, 1]))
    jsma = Evaluated(_set("direct/jsma", (4,), (2,)), imgs[:1] + 20, np.array([0]))
    panels = figure3_panels(b, labels, names, imgs, imgs + 1, [fgsm, jsma], count=2)
    # Row 4 is fooled by both attacks, row 5 by one: shown in that order.
    assert [len(p) for p in panels] == [3, 2]
    image, mask, t_img, t_mask = panels[0][0]
    assert image[0, 0, 0] == 1.0 and mask[0, 0, 0] == 2.0  # test position of row 4
    assert (t_img, t_mask) == ("benign: f1 two", "f2 one")
    assert [p[2:] for p in panels[0][1:]] == [
        ("fgsm: f1 zero", "f2 one"),
        ("jsma: f1 two", "f2 zero"),
    ]
    assert panels[1][1][2:] == ("fgsm: f1 one", "f2 two")


def test_chain_sets_keep_standard_examples_that_newly_fool_f1(tmp_path):
    layout = ChainLayout(
        (ModelEntry("standard", None, "f.pt"), ModelEntry("at_0.06", 0.06, "r.pt")),
        ("untargeted",),
        (0.06,),
    )
    g = create_group(tmp_path / "attack.zarr", layout.to_attrs())
    s = dict(dims=("sample",), chunk_size=4)
    write_array(g, "rows", np.array([10, 11, 12, 13]), **s)
    write_array(g, "labels", np.array([0, 1, 2, 3]), **s)
    for model in ("standard", "at_0.06"):
        write_array(g, f"{model}/clean_pred", np.array([0, 1, 0, 3]), **s)
        write_array(g, f"{model}/untargeted/eps_0.06/pred", np.array([1, 1, 1, 0]), **s)
        x = np.arange(16, dtype=np.float32).reshape(4, 1, 2, 2) / 16
        write_array(
            g,
            f"{model}/untargeted/eps_0.06/images",
            x,
            dims=("sample", "c", "y", "x"),
            chunk_size=4,
        )
    (ex,) = chain_example_sets(tmp_path / "attack.zarr")
    # Clean correct and attacked wrong: samples 0 and 3 (1 stays correct, 2 was wrong).
    assert ex.name == "ifgsm/untargeted/eps_0.06"
    np.testing.assert_array_equal(ex.rows, [10, 13])
    np.testing.assert_array_equal(ex.labels, [0, 3])
    np.testing.assert_array_equal(ex.f1_pred, [1, 0])
    np.testing.assert_array_equal(ex.images, x[[0, 3]])


def test_write_roc_curves(tmp_path):
    curves = {"direct/fgsm": (np.array([0.0, 1.0]), np.array([0.5, 1.0]), 0.75)}
    curves["transfer/cw"] = (np.zeros(0), np.zeros(0), None)
    write_roc_curves(tmp_path / "roc", curves)
    assert sorted(p.name for p in (tmp_path / "roc").iterdir()) == [
        "direct_fgsm.csv",
        "transfer_cw.csv",
    ]
    df = pd.read_csv(tmp_path / "roc" / "direct_fgsm.csv")
    assert list(df.columns) == ["fpr", "tpr"] and df["tpr"].tolist() == [0.5, 1.0]


def test_full_run_agrees_with_its_parts(tmp_path):
    images, index = toy_dataset(tmp_path / "d.zarr")
    f1 = standard_toy_model()
    torch.manual_seed(0)
    lan = build_lan("conv", (3, 16, 16), (4, 8)).eval()
    f2 = MaskClassifier(4).eval()
    masks = write_array(
        create_group(tmp_path / "masks.zarr"),
        "masks",
        attention_masks(lan, images[:], 16, CPU),
        dims=("sample", "channel", "y", "x"),
        chunk_size=8,
    )
    rows = np.flatnonzero(index.split == 2)[:6]
    x = torch.as_tensor(images[rows[0] : rows[-1] + 1])
    y = torch.as_tensor(index.labels[rows])
    adv = Fgsm(0.1)(f1, x, y).numpy()
    sets = [
        ExampleSet("direct/fgsm", rows, index.labels[rows], np.full(6, 1), adv),
        ExampleSet("transfer/fgsm", rows[:2], index.labels[rows[:2]], np.full(2, 2), adv[:2]),
    ]
    cfg = LanDetectConfig.model_validate({"batch_size": 4, "figure": {"dpi": 40}})
    result = mask_detection(f1, lan, f2, images, masks, index, sets, None, cfg, seed=0, device=CPU)

    m = result.metrics
    assert m["ifgsm"] == NO_IFGSM and list(result.curves) == ["direct/fgsm", "transfer/fgsm"]
    assert m["table2_direct"]["fgsm"]["n_adversarial"] == 6
    assert m["table2_direct"]["fgsm"]["n_benign"] == 6  # balanced (16 test images)
    assert m["table3_transfer"]["fgsm"]["n_benign"] == 2
    # The direct row, recomputed from its parts.
    test_rows = np.flatnonzero(index.split == 2)
    f1_test = f1(torch.as_tensor(images[test_rows[0] :])).argmax(1).numpy()
    p_test = predict_proba(f2, masks[test_rows[0] :], 5, CPU).numpy()
    benign = benign_side(test_rows, f1_test, p_test, index.labels, seed=0)
    p = predict_proba(f2, attention_masks(lan, adv, 5, CPU), 5, CPU).numpy()
    expect, _ = set_rows(sets[0], p.argmax(1), 1.0 - p[:, 1].astype(np.float64), benign)
    assert m["table4_good_masks"]["direct/fgsm"] == {
        k: expect["good_masks"][k]
        for k in ("true_positive", "true_negative", "n_adversarial", "n_benign", "recovery")
    }
    assert m["auc"]["direct/fgsm"] == pytest.approx(expect["all"]["auc"])
    assert isinstance(result.roc_figure, Figure) and isinstance(result.figure, Figure)
    # figure_examples = 2 (default): two benign images, each with its FGSM version.
    assert len(result.figure.axes) == 2 * 2 * 2
