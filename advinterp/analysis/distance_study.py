"""Gulshad et al. Sec. 4.2 on the attack chain's stores: Figure 5 and its eps curve.

At the budget ``eps`` and per attack mode, the four panels of
:func:`~advinterp.analysis.distances.figure5_panels` (Eqs. 8-15) with their histograms
(Figure 5) and summaries; at every budget of the attack grid, the fraction of fooled
images whose attributes are closer to the wrong class (panels c and d).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import zarr
from matplotlib.figure import Figure

from advinterp.analysis.distance_plots import figure5
from advinterp.analysis.distances import (
    DistancePair,
    ModelAttributes,
    figure5_panels,
    histogram_table,
    l2_rows,
)
from advinterp.config.attributes import DistancesConfig
from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key
from advinterp.grounding.cases import chain_at_model
from advinterp.grounding.chain_arrays import ChainArrays, read_array, store_origin

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("mode", "panel", "row", "d1", "d2")


@dataclass(frozen=True)
class DistanceResult:
    """Everything the distances analysis reports.

    Attributes:
        metrics: settings, per-mode panel summaries, closer-to-wrong fractions.
        table: one row per (mode, panel, image): ``mode, panel, row, d1, d2``.
        histograms: Figure 5's bin counts (:func:`~advinterp.analysis.distances.histogram_table`).
        curve: per eps of the grid, the fraction with d1 < d2 of panels a, c, d and their n.
        figures: mode -> Figure 5.
    """

    metrics: dict[str, Any]
    table: pd.DataFrame
    histograms: pd.DataFrame
    curve: pd.DataFrame
    figures: dict[str, Figure]


def attributes_at(
    chain: ChainArrays, model: str, mode: str, eps: str, normalize: str
) -> ModelAttributes:
    """``model``'s clean and adversarial (``mode``, eps key ``eps``) predictions; ``l2``
    scales the attributes to unit norm like φ."""
    norm = l2_rows if normalize == "l2" else np.asarray
    return ModelAttributes(
        clean=norm(chain.attributes(model)),
        adversarial=norm(chain.attributes(model, mode, eps)),
        clean_pred=chain.pred(model),
        adv_pred=chain.pred(model, mode, eps),
    )


def distance_study(attack: zarr.Group, sje: zarr.Group, cfg: DistancesConfig) -> DistanceResult:
    """Figure 5 at ``cfg.eps`` per attack mode, and the closer-to-wrong curve over eps.

    Args:
        attack, sje: the stores of stages attack and sje.

    Raises:
        ParamError: ``cfg.eps`` was not attacked or ``cfg.at_model`` names no AT model.
        StoreError: an array the analysis reads is missing (checked before computing).
    """
    layout = ChainLayout.from_attrs(sje.attrs, store_origin(sje))
    at = chain_at_model(layout, cfg.eps, cfg.at_model, "distances")
    # Check every array the analysis reads before computing anything.
    layout.require(
        sje,
        store_origin(sje),
        per_model=("clean/attributes", "clean/pred"),
        per_set=("attributes",),
    )
    if cfg.classifier == "softmax":
        layout.require(attack, store_origin(attack), per_model=("clean_pred",), per_set=("pred",))
    else:
        layout.require(sje, store_origin(sje), per_set=("pred",))
    rows, true = read_array(sje, "rows"), read_array(sje, "labels")
    phi = read_array(sje, "class_embeddings")
    chain = ChainArrays(attack, sje, rows, cfg.classifier)

    def panels(mode: str, ek: str) -> tuple[dict[str, DistancePair], dict[str, np.ndarray]]:
        return figure5_panels(
            attributes_at(chain, STANDARD, mode, ek, cfg.normalize),
            attributes_at(chain, at, mode, ek, cfg.normalize),
            phi,
            true,
            cfg.fraction,
            cfg.scope,
        )

    metrics: dict[str, Any] = {
        "eps": cfg.eps,
        "at_model": at,
        "classifier": cfg.classifier,
        "fraction": cfg.fraction,
        "normalize": cfg.normalize,
    }
    table: list[dict[str, Any]] = []
    all_pairs: dict[str, DistancePair] = {}
    figures: dict[str, Figure] = {}
    for mode in MODES:
        pairs, sets = panels(mode, eps_key(cfg.eps))
        metrics[mode] = {k: p.summary() for k, p in pairs.items()}
        for k, p in pairs.items():
            table += [
                {"mode": mode, "panel": k, "row": int(r), "d1": float(a), "d2": float(b)}
                for r, a, b in zip(rows[sets[k]], p.d1, p.d2, strict=True)
            ]
        all_pairs.update({f"{mode}_{k}": p for k, p in pairs.items()})
        figures[mode] = figure5(
            pairs, f"Figure 5, {mode} IFGSM, eps {cfg.eps:g} (AT model {at})", cfg.bins
        )
        log.info("%s: %s", mode, {k: v["fraction_d1_lt_d2"] for k, v in metrics[mode].items()})
    curve = []
    for e in layout.eps:
        point: dict[str, Any] = {"eps": e}
        for mode in MODES:
            pairs, _ = panels(mode, eps_key(e))
            for k in ("a", "c", "d"):
                point[f"{mode}_{k}"] = pairs[k].summary()["fraction_d1_lt_d2"]
                point[f"{mode}_{k}_n"] = len(pairs[k].d1)
        curve.append(point)
    metrics["closer_to_wrong_class"] = {m: metrics[m]["c"]["fraction_d1_lt_d2"] for m in MODES}
    metrics["closer_to_wrong_class_at"] = {m: metrics[m]["d"]["fraction_d1_lt_d2"] for m in MODES}
    return DistanceResult(
        metrics=metrics,
        table=pd.DataFrame(table, columns=list(TABLE_COLUMNS)),
        histograms=histogram_table(all_pairs, cfg.bins),  # one set of bins for every panel
        curve=pd.DataFrame(curve),
        figures=figures,
    )
