"""Softmax vs SJE accuracy against eps (Gulshad et al. Sec. 4.1, Figure 4).

Figure 4 plots, per attack (untargeted, targeted), top-1 accuracy against eps of the
softmax classifier and of SJE on clean images x, adversarial images x̂, and the same
with adversarial training, x (AT) and x̂ (AT). The paper trains one AT model per eps;
here every AT model is attacked at every eps, and the figure's AT curves take, at each
eps, the AT model whose training eps is nearest (ties: the larger).

:func:`figure4_accuracy` reads the chain's feature and SJE stores into the long table,
the curves, the figure and the headline numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import zarr
from matplotlib.figure import Figure

from advinterp.data.adversarial import CLEAN, MODES, STANDARD, ChainLayout, eps_key, finite
from advinterp.errors import StoreError

TABLE_COLUMNS = ("model", "train_eps", "mode", "eps", "images", "classifier", "accuracy", "n")
CURVE_COLUMNS = (
    "eps",
    "softmax_clean",
    "sje_clean",
    "softmax_adv",
    "sje_adv",
    "softmax_clean_at",
    "sje_clean_at",
    "softmax_adv_at",
    "sje_adv_at",
    "at_model",
)
CLASSIFIERS = ("softmax", "sje")
log = logging.getLogger(__name__)
HEADLINE_EPS = (0.01, 0.06, 0.12)
"""The eps at which the paper reads Figure 4 (the headline metrics)."""


def accuracy_rows(
    *,
    model: str,
    train_eps: float | None,
    labels: np.ndarray,
    clean: Mapping[str, np.ndarray],
    adversarial: Mapping[tuple[str, float], Mapping[str, np.ndarray]],
) -> list[dict]:
    """Table rows for one model: clean (eps 0) and adversarial accuracy per classifier.

    Args:
        clean: classifier name -> predictions on the clean images.
        adversarial: (mode, eps) -> classifier name -> predictions on x̂.

    Shape:
        labels and every prediction array: (n,) int.
    """
    labels = np.asarray(labels)

    def acc(pred: np.ndarray) -> float:
        return float(np.mean(np.asarray(pred) == labels)) if len(labels) else float("nan")

    modes = sorted({mode for mode, _ in adversarial})
    rows = []
    for mode in modes:
        for clf, pred in clean.items():
            rows.append(
                {
                    "model": model,
                    "train_eps": train_eps,
                    "mode": mode,
                    "eps": 0.0,
                    "images": "clean",
                    "classifier": clf,
                    "accuracy": acc(pred),
                    "n": len(labels),
                }
            )
    for (mode, eps), preds in adversarial.items():
        for clf, pred in preds.items():
            rows.append(
                {
                    "model": model,
                    "train_eps": train_eps,
                    "mode": mode,
                    "eps": float(eps),
                    "images": "adversarial",
                    "classifier": clf,
                    "accuracy": acc(pred),
                    "n": len(labels),
                }
            )
    return rows


def nearest_at_model(eps: float, at_models: Mapping[str, float]) -> str | None:
    """Key of the AT model whose training eps is nearest ``eps`` (ties: the larger)."""
    if not at_models:
        return None
    return min(at_models, key=lambda k: (abs(at_models[k] - eps), -at_models[k]))


def figure4_curves(table: pd.DataFrame, mode: str, standard: str = "standard") -> pd.DataFrame:
    """Wide Figure 4 curves for one attack mode: one row per eps, ``CURVE_COLUMNS``.

    Clean columns repeat the eps-independent clean accuracy so every column is a curve.
    AT columns are NaN when there is no AT model.
    """
    t = table[table["mode"] == mode]
    at_models = {
        m: float(e)
        for m, e in t[["model", "train_eps"]].drop_duplicates().itertuples(index=False)
        if m != standard and pd.notna(e)
    }

    def value(model: str | None, images: str, clf: str, eps: float) -> float:
        if model is None:
            return float("nan")
        sel = t[(t["model"] == model) & (t["images"] == images) & (t["classifier"] == clf)]
        if images == "adversarial":
            sel = sel[np.isclose(sel["eps"], eps)]
        return float(sel["accuracy"].iloc[0]) if len(sel) else float("nan")

    out = []
    for eps in sorted(t.loc[t["images"] == "adversarial", "eps"].unique()):
        at = nearest_at_model(eps, at_models)
        row: dict = {"eps": float(eps)}
        for clf in CLASSIFIERS:
            row[f"{clf}_clean"] = value(standard, "clean", clf, eps)
            row[f"{clf}_adv"] = value(standard, "adversarial", clf, eps)
            row[f"{clf}_clean_at"] = value(at, "clean", clf, eps)
            row[f"{clf}_adv_at"] = value(at, "adversarial", clf, eps)
        row["at_model"] = at or ""
        out.append(row)
    return pd.DataFrame(out, columns=list(CURVE_COLUMNS))


# The paper's colours: clean red, adversarial blue, AT clean green, AT adversarial purple.
_SERIES = (
    ("clean", "tab:red", "x"),
    ("adv", "tab:blue", "x̂"),
    ("clean_at", "tab:green", "x (AT)"),
    ("adv_at", "tab:purple", "x̂ (AT)"),
)


def plot_figure4(curves: Mapping[str, pd.DataFrame], title: str = "", dpi: int = 120) -> Figure:
    """One panel per attack mode; solid = softmax, dashed = SJE (the paper's Figure 4).

    eps is on a log axis: on small models the interesting range spans two decades.
    """
    modes: Sequence[str] = list(curves)
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 4.4), dpi=dpi, squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        c = curves[mode]
        for suffix, color, label in _SERIES:
            for clf, style in (("softmax", "-"), ("sje", "--")):
                col = f"{clf}_{suffix}"
                if c[col].notna().any():
                    name = "Softmax" if clf == "softmax" else "SJE"
                    ax.plot(
                        c["eps"],
                        c[col],
                        style,
                        color=color,
                        marker="o",
                        ms=3,
                        label=f"{name} {label}",
                    )
        ax.set_xscale("log")
        ax.set_xticks(c["eps"], [f"{e:g}" for e in c["eps"]], rotation=45, fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("ε (L∞, pixel units)")
        ax.set_ylabel("top-1 accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title} {mode} IFGSM".strip())
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def _read(group: zarr.Group, path: str, rows: np.ndarray | None = None) -> np.ndarray:
    """The array ``path`` of ``group`` read whole, or its ``rows`` only."""
    arr = cast(zarr.Array, group[path])
    return np.asarray(arr[:] if rows is None else arr.oindex[rows])


def chain_accuracy_table(
    features: zarr.Group, sje: zarr.Group, layout: ChainLayout, origin: str
) -> pd.DataFrame:
    """The long table (``TABLE_COLUMNS``) of every model of the chain stores.

    Softmax predictions are the argmax of the ``adv_features`` store's logits, SJE's
    those of the ``sje`` store; clean accuracy is read on the attacked subset
    (``features["rows"]``), adversarial accuracy on every ``<mode>/<eps_key>`` set.

    Raises:
        StoreError: NaN or inf logits (``origin`` names the features store).
    """
    labels = _read(features, "labels")
    rows = _read(features, "rows")
    records: list[dict] = []
    for entry in layout.models:
        clean = {
            "softmax": finite(
                _read(features, f"{entry.key}/{CLEAN}/logits", rows),
                f"{origin}/{entry.key}/clean/logits",
            ).argmax(1),
            "sje": _read(sje, f"{entry.key}/{CLEAN}/pred", rows),
        }
        adversarial = {}
        for mode in layout.modes:
            for e, ek in zip(layout.eps, layout.eps_keys, strict=True):
                adversarial[(mode, e)] = {
                    "softmax": finite(
                        _read(features, f"{entry.key}/{mode}/{ek}/logits"),
                        f"{origin}/{entry.key}/{mode}/{ek}/logits",
                    ).argmax(1),
                    "sje": _read(sje, f"{entry.key}/{mode}/{ek}/pred"),
                }
        records += accuracy_rows(
            model=entry.key,
            train_eps=entry.train_eps,
            labels=labels,
            clean=clean,
            adversarial=adversarial,
        )
    return pd.DataFrame(records, columns=list(TABLE_COLUMNS))


def headline(table: pd.DataFrame, curves: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Clean accuracies and Figure 4's adversarial values at ``HEADLINE_EPS``.

    Returns:
        ``{"n": images, "clean": {"<model>/<classifier>": acc}, <mode>: {eps_key:
        {softmax_adv, sje_adv, softmax_adv_at, sje_adv_at}}}``, None for a missing curve.
    """
    clean = table[(table["images"] == "clean")].drop_duplicates(["model", "classifier"])
    out: dict[str, Any] = {
        "n": int(table["n"].iloc[0]) if len(table) else 0,
        "clean": {
            f"{r.model}/{r.classifier}": float(r.accuracy) for r in clean.itertuples(index=False)
        },
    }
    for mode, c in curves.items():
        out[mode] = {}
        for e in HEADLINE_EPS:
            row = c[np.isclose(c["eps"], e)]
            if len(row):
                r = row.iloc[0]
                out[mode][eps_key(e)] = {
                    k: (None if pd.isna(r[k]) else float(r[k]))
                    for k in ("softmax_adv", "sje_adv", "softmax_adv_at", "sje_adv_at")
                }
    return out


@dataclass
class Figure4:
    """What :func:`figure4_accuracy` returns: the long table, curves per mode, the figure
    (caller saves and closes it) and the headline metrics."""

    table: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    figure: Figure
    metrics: dict[str, Any]


def figure4_accuracy(
    features: zarr.Group,
    sje: zarr.Group,
    *,
    features_origin: str,
    sje_origin: str,
    dpi: int,
) -> Figure4:
    """Figure 4 from the ``adv_features`` and ``sje`` stores of one chain.

    Raises:
        StoreError: the stores come from different attacks, miss arrays, hold NaN/inf
            logits, or have other attack modes than ``MODES``.
    """
    layout = ChainLayout.from_attrs(features.attrs, features_origin)
    if ChainLayout.from_attrs(sje.attrs, sje_origin) != layout:
        raise StoreError(
            f"{sje_origin}: made from other adversarial examples than {features_origin}"
        )
    layout.require(features, features_origin, per_model=("clean/logits",), per_set=("logits",))
    layout.require(sje, sje_origin, per_model=("clean/pred",), per_set=("pred",))
    table = chain_accuracy_table(features, sje, layout, features_origin)
    if tuple(layout.modes) != MODES:
        raise StoreError(f"{features_origin}: expected attack modes {MODES}, found {layout.modes}")
    curves = {mode: figure4_curves(table, mode, STANDARD) for mode in MODES}
    for mode, c in curves.items():
        log.info("%s:\n%s", mode, c.to_string(index=False, float_format="%.3f"))
    return Figure4(table, curves, plot_figure4(curves, dpi=dpi), headline(table, curves))
