"""Nguyen et al. Tables 1-4, ROC/AUC and Figure 3 from LAN masks (the ``lan_detect`` run).

An image is flagged adversarial when f2's class for its LAN mask g(x) differs from f1's
class (Nguyen et al. Fig. 2; the rule and one table row are
:mod:`advinterp.analysis.detection`). This module evaluates every set of adversarial
examples (``lan_attacks``' FGSM/JSMA/C&W, direct and transfer, and optionally the
attribute chain's IFGSM examples) against as many benign test images:

* each set gets a row over all its examples and one over the examples whose benign
  mask f2 classifies correctly (Table 4's subset), with balanced benign sets drawn in
  one seeded order (:func:`~advinterp.analysis.detection.balanced_benign`);
* the rows are gathered into Table 1 (mask class kept), Tables 2-3 (TP/TN, direct and
  transfer), Table 4 (good masks, with recovery), the AUCs and the IFGSM table;
* the ROC curves of the graded score 1 - p_f2(f1's class) and the Figure 3 analogue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from advinterp.analysis.detection import balanced_benign, detection_row, detection_score, roc
from advinterp.analysis.mask_detection_figures import invariance_figure, roc_figure
from advinterp.config.lan_detect import LanDetectConfig
from advinterp.data.adversarial import STANDARD, ChainLayout
from advinterp.data.dataset import TEST, AttributeIndex
from advinterp.explainers.lan import attention_masks
from advinterp.models.mask_classifier import predict_proba
from advinterp.models.predict import predict
from advinterp.store import (
    atomic_output,
    decoded,
    open_store,
    read_array,
    require_array,
    str_list_attr,
)

log = logging.getLogger(__name__)

Curve = tuple[np.ndarray, np.ndarray, float | None]
"""fpr (T,), tpr (T,), AUC (None when a side is empty)."""
RATES = ("true_positive", "true_negative", "n_adversarial", "n_benign")
# The chain's eps grid is long: the paper's three budgets keep the ROC plot readable.
SHOWN_IFGSM = tuple(f"ifgsm/untargeted/eps_{e}" for e in ("0.01", "0.06", "0.12"))
NO_IFGSM = "not evaluated (no --ifgsm store given)"


@dataclass(frozen=True)
class ExampleSet:
    """Adversarial examples of one setting, each fooling f1.

    Attributes:
        name: ``"<setting>/<attack>"`` (``direct/fgsm``, ``ifgsm/untargeted/eps_0.06``).
        rows: (M,) int64 dataset row of each example's benign original.
        labels: (M,) int64 true classes.
        f1_pred: (M,) int64 f1's class on the example (!= label).
        images: (M, C, H, W) float32 in [0, 1].
    """

    name: str
    rows: np.ndarray
    labels: np.ndarray
    f1_pred: np.ndarray
    images: np.ndarray


def lan_example_sets(path: Path | str) -> list[ExampleSet]:
    """The sets of a ``lan_attacks`` store (one per ``attrs["settings"]`` entry), in order."""
    store = open_store(path, {"images": 4, "rows": 1, "labels": 1, "f1_pred": 1, "setting": 1})
    code, rows, labels, f1_pred = (
        read_array(store, k) for k in ("setting", "rows", "labels", "f1_pred")
    )
    images = require_array(store, "images")
    sets = []
    for k, name in enumerate(str_list_attr(store, "settings", str(path))):
        sel = np.flatnonzero(code == k)
        sets.append(ExampleSet(name, rows[sel], labels[sel], f1_pred[sel], _rows_of(images, sel)))
    return sets


def chain_example_sets(path: Path | str) -> list[ExampleSet]:
    """The standard model's IFGSM sets of an ``attack`` store, each restricted to the
    images f1 classifies correctly when clean and wrongly when attacked."""
    origin = str(path)
    chain = open_store(path, {"rows": 1, "labels": 1})
    layout = ChainLayout.from_attrs(chain.attrs, origin)
    rows, labels = read_array(chain, "rows"), read_array(chain, "labels")
    clean_pred = read_array(chain, f"{STANDARD}/clean_pred", origin)
    sets = []
    for entry, mode, _eps, group in layout.adversarial_sets():
        if entry.key != STANDARD:
            continue
        pred = read_array(chain, f"{group}/pred", origin)
        sel = np.flatnonzero((clean_pred == labels) & (pred != labels))
        images = _rows_of(decoded(chain, f"{group}/images", origin), sel)
        name = f"ifgsm/{mode}/{group.rsplit('/', 1)[1]}"
        sets.append(ExampleSet(name, rows[sel], labels[sel], pred[sel], images))
    return sets


def _rows_of(array: Any, sel: np.ndarray) -> np.ndarray:
    if len(sel):
        return np.asarray(array.get_orthogonal_selection((sel,)))
    return np.zeros((0, *array.shape[1:]), np.float32)


@dataclass(frozen=True)
class Benign:
    """f1 and f2 on the benign test images, indexed by dataset row (-1 / NaN elsewhere).

    Attributes:
        test_rows: (T,) dataset rows of the test split, increasing.
        f1, f2: (N,) int64 f1's class of the image, f2's class of its stored mask.
        score: (N,) float64 detection score 1 - p_f2(f1's class).
        order: a seeded permutation of ``test_rows``: the benign sets are its prefixes.
        good_masks: test rows whose mask f2 classifies correctly (Table 4's subset).
    """

    test_rows: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    score: np.ndarray
    order: np.ndarray
    good_masks: np.ndarray


def benign_side(
    test_rows: np.ndarray,
    f1_pred: np.ndarray,
    f2_proba: np.ndarray,
    labels: np.ndarray,
    seed: int,
) -> Benign:
    """:class:`Benign` from f1's classes and f2's probabilities on the test rows.

    Shape:
        test_rows, f1_pred: (T,); f2_proba: (T, K); labels: (N,) for every dataset row.
    """
    n = len(labels)
    b_f1 = np.full(n, -1, np.int64)
    b_f2 = np.full(n, -1, np.int64)
    score = np.full(n, np.nan)
    b_f1[test_rows] = f1_pred
    b_f2[test_rows] = f2_proba.argmax(1)
    score[test_rows] = detection_score(f2_proba, b_f1[test_rows])
    order = np.random.default_rng(seed).permutation(test_rows)
    good = test_rows[b_f2[test_rows] == labels[test_rows]]
    return Benign(test_rows, b_f1, b_f2, score, order, good)


def set_rows(
    ex: ExampleSet, f2_pred: np.ndarray, scores: np.ndarray, benign: Benign
) -> tuple[dict[str, dict[str, Any]], Curve]:
    """One set's table rows: over all examples (``"all"``) and over those whose benign
    mask f2 classifies correctly (``"good_masks"``); and its ROC curve (all examples).

    Args:
        f2_pred: (M,) f2's class of each example's mask; scores: (M,) detection scores.
    """
    result: dict[str, dict[str, Any]] = {}
    curve: Curve = (np.zeros(0), np.zeros(0), None)
    for table, restrict in (("all", None), ("good_masks", benign.good_masks)):
        sel = np.ones(len(ex.rows), bool) if restrict is None else np.isin(ex.rows, restrict)
        pool = benign.test_rows if restrict is None else restrict
        ben = balanced_benign(pool, int(sel.sum()), benign.order)
        row = detection_row(
            adv_f1=ex.f1_pred[sel],
            adv_f2=f2_pred[sel],
            adv_f2_benign=benign.f2[ex.rows[sel]],
            adv_labels=ex.labels[sel],
            benign_f1=benign.f1[ben],
            benign_f2=benign.f2[ben],
            adv_scores=scores[sel],
            benign_scores=benign.score[ben],
        )
        result[table] = row.as_dict()
        if restrict is None:
            curve = roc(scores[sel], benign.score[ben])
    return result, curve


def detection_tables(
    rows: dict[str, dict[str, dict[str, Any]]],
    benign: Benign,
    labels: np.ndarray,
    ifgsm_evaluated: bool,
) -> dict[str, Any]:
    """The metrics: f1/f2 test accuracy, the benign TN rate on the whole test split and
    Tables 1-4, AUCs and the IFGSM table from :func:`set_rows` results by set name."""

    def table(prefix: str, key: str, fields: Sequence[str]) -> dict[str, Any]:
        return {
            name.split("/", 1)[1]: {f: rows[name][key][f] for f in fields}
            for name in rows
            if name.startswith(prefix + "/")
        }

    t = benign.test_rows
    return {
        "f1_test_accuracy": float((benign.f1[t] == labels[t]).mean()),
        "f2_test_accuracy": float((benign.f2[t] == labels[t]).mean()),
        "benign_true_negative_all_test": float((benign.f1[t] == benign.f2[t]).mean()),
        "table1_mask_class_kept": {name: rows[name]["all"]["mask_class_kept"] for name in rows},
        "table2_direct": table("direct", "all", RATES),
        "table3_transfer": table("transfer", "all", RATES),
        "table4_good_masks": {
            name: {f: rows[name]["good_masks"][f] for f in (*RATES, "recovery")}
            for name in rows
            if not name.startswith("ifgsm/")
        },
        "auc": {name: rows[name]["all"]["auc"] for name in rows},
        "ifgsm": table("ifgsm", "all", (*RATES, "mask_class_kept", "auc"))
        if ifgsm_evaluated
        else NO_IFGSM,
    }


def shown_curves(curves: dict[str, Curve]) -> dict[str, Curve]:
    """The curves the ROC figure draws: every non-IFGSM set, then the IFGSM sets at the
    paper's three untargeted budgets."""
    shown = {k: v for k, v in curves.items() if not k.startswith("ifgsm/")}
    shown.update({k: v for k, v in curves.items() if k in SHOWN_IFGSM})
    return shown


@dataclass(frozen=True)
class Evaluated:
    """An example set with g's masks and f2's classes of them (Figure 3 draws these).

    Shape:
        masks: (M, C, H, W) float32 in [0, 1]; f2_pred: (M,) int64.
    """

    examples: ExampleSet
    masks: np.ndarray
    f2_pred: np.ndarray


def figure3_panels(
    benign: Benign,
    labels: np.ndarray,
    class_names: Sequence[str],
    test_images: np.ndarray,
    test_masks: np.ndarray,
    direct: Iterable[Evaluated],
    count: int,
) -> list[list[tuple[np.ndarray, np.ndarray, str, str]]]:
    """Figure 3 analogue's examples: the ``count`` test images fooled by the most direct
    attacks (then those with a correctly classified mask, then the lowest row), each
    with its first adversarial version per attack. Image titles give f1's class, mask
    titles f2's.

    Shape:
        test_images, test_masks: (T, C, H, W) in the order of ``benign.test_rows``.
    """
    direct = list(direct)
    attacked = [set(d.examples.rows.tolist()) for d in direct]
    test_rows = benign.test_rows
    hits = {int(r): sum(int(r in rows) for rows in attacked) for r in test_rows}
    picks = sorted(test_rows.tolist(), key=lambda r: (-hits[r], benign.f2[r] != labels[r], r))
    b_f1, b_f2, names = benign.f1, benign.f2, class_names
    panels = []
    for r in picks[:count]:
        i = int(np.flatnonzero(test_rows == r)[0])
        panel = [
            (test_images[i], test_masks[i], f"benign: f1 {names[b_f1[r]]}", f"f2 {names[b_f2[r]]}")
        ]
        for d in direct:
            ex = d.examples
            for j in np.flatnonzero(ex.rows == r)[:1]:
                panel.append(
                    (
                        ex.images[j],
                        d.masks[j],
                        f"{ex.name.split('/')[1]}: f1 {names[ex.f1_pred[j]]}",
                        f"f2 {names[d.f2_pred[j]]}",
                    )
                )
        panels.append(panel)
    return panels


@dataclass
class MaskDetection:
    """What :func:`mask_detection` returns: the metrics (:func:`detection_tables`), the
    ROC curve of every set by name, the ROC figure and the Figure 3 analogue."""

    metrics: dict[str, Any]
    curves: dict[str, Curve]
    roc_figure: Figure
    figure: Figure


def mask_detection(
    f1: nn.Module,
    lan: nn.Module,
    f2: nn.Module,
    images: Any,
    masks: Any,
    index: AttributeIndex,
    sets: Sequence[ExampleSet],
    chain_sets: Sequence[ExampleSet] | None,
    cfg: LanDetectConfig,
    *,
    seed: int,
    device: torch.device,
) -> MaskDetection:
    """Evaluate the LAN detector on ``sets`` (then ``chain_sets``, when given).

    ``seed`` fixes the order benign test images are drawn in for balanced sets;
    ``cfg`` gives the batch size, the Figure 3 example count and the figures' dpi.

    Shape:
        images, masks: (N, C, H, W) float32 in [0, 1], one per dataset row (zarr
        arrays): the benign images and their stored LAN masks.
    """
    test_rows = np.flatnonzero(index.split == TEST)
    test_images = np.asarray(images.get_orthogonal_selection((test_rows,)))
    test_masks = np.asarray(masks.get_orthogonal_selection((test_rows,)))
    batch_size = cfg.batch_size
    f1_pred = predict(f1, test_images, batch_size, device).numpy()
    proba = predict_proba(f2, test_masks, batch_size, device).numpy()
    benign = benign_side(test_rows, f1_pred, proba, index.labels, seed)

    rows: dict[str, dict[str, dict[str, Any]]] = {}
    curves: dict[str, Curve] = {}
    evaluated: list[Evaluated] = []
    for ex in [*sets, *(chain_sets or ())]:
        adv_masks = attention_masks(lan, ex.images, batch_size, device)
        p = predict_proba(f2, adv_masks, batch_size, device).numpy()
        f2_pred = p.argmax(1)
        rows[ex.name], curves[ex.name] = set_rows(
            ex, f2_pred, detection_score(p, ex.f1_pred), benign
        )
        evaluated.append(Evaluated(ex, adv_masks, f2_pred))
        log.info("%s: %s", ex.name, rows[ex.name]["all"])

    metrics = detection_tables(rows, benign, index.labels, chain_sets is not None)
    direct = [e for e in evaluated[: len(sets)] if e.examples.name.startswith("direct/")]
    panels = figure3_panels(
        benign,
        index.labels,
        index.class_names,
        test_images,
        test_masks,
        direct,
        cfg.figure_examples,
    )
    return MaskDetection(
        metrics,
        curves,
        roc_figure(shown_curves(curves), dpi=cfg.figure.dpi),
        invariance_figure(panels, dpi=cfg.figure.dpi),
    )


def write_roc_curves(path: Path | str, curves: dict[str, Curve]) -> None:
    """A directory of ``<set name with / as _>.csv`` files with columns fpr, tpr."""
    with atomic_output(path) as tmp:
        tmp.mkdir()
        for name, (fpr, tpr, _auc) in curves.items():
            pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(
                tmp / f"{name.replace('/', '_')}.csv", index=False
            )
