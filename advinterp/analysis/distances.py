"""Attribute distances of Gulshad et al. Sec. 4.2 (Eqs. 8-15, Figure 5).

Notation: ``Z_{n,y_n}`` predicted attributes (SJE's θ(x)W) of a clean image classified
correctly as ``y_n``; ``Ẑ_{n,y}`` of its adversarial image misclassified as ``y``;
``Ẑ^AT`` the same under adversarial training; ``φ(·)`` class embeddings. Every
distance is Euclidean over the *top 20% most-changed attributes* (the attributes the
perturbation moves most, :func:`~advinterp.grounding.selection.most_changed`):

(a) Eqs. 8-9: ``d1 = ||Z_{n,y_n} - Ẑ_{n,y}||`` vs ``d2 = ||φ(y_n) - φ(y)||`` -- how
    far the attack moved the attributes compared with how far apart the two classes are;
(b) Eqs. 12-13: ``d1 = ||Ẑ^AT_{n,y_n} - Ẑ_{n,y}||`` vs ``d2 = ||φ(y_n) - φ(y)||`` --
    the same with the adversarial image that adversarial training classifies correctly
    in place of the clean image;
(c) Eqs. 10-11: ``d1 = ||Ẑ_{n,y} - φ(y)||`` vs ``d2 = ||Ẑ_{n,y} - φ(y_n)||`` -- are the
    adversarial attributes closer to the wrong class than to the correct one?
(d) Eqs. 14-15: (c) for adversarial images that fool the adversarially trained model.

The paper reads (c)/(d) as "adversarial images are misclassified because their
attributes are close to the wrong class": the summary is the fraction with d1 < d2.
:func:`figure5_panels` picks each panel's images (fooled / recovered) and computes all four.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from advinterp.grounding.cases import fooled, recovered

# l2_rows is re-exported: the distances and the grounding share one normalisation
from advinterp.grounding.selection import l2_rows as l2_rows
from advinterp.grounding.selection import most_changed

PANELS = {
    "a": ("||Z - Ẑ||", "||φ(y_n) - φ(y)||", "Eqs. 8-9: clean vs adversarial attributes"),
    "b": ("||Ẑ_AT - Ẑ||", "||φ(y_n) - φ(y)||", "Eqs. 12-13: AT vs standard adversarial"),
    "c": ("||Ẑ - φ(y)||", "||Ẑ - φ(y_n)||", "Eqs. 10-11: adversarial to wrong vs correct class"),
    "d": (
        "||Ẑ_AT - φ(y)||",
        "||Ẑ_AT - φ(y_n)||",
        "Eqs. 14-15: as (c) under adversarial training",
    ),
}


def masked_distance(u: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance over the attributes where ``mask`` is True.

    Shape:
        u, v: (N, A) float; mask: (N, A) bool. returns: (N,) float64.
    """
    diff = np.where(mask, np.asarray(u, np.float64) - np.asarray(v, np.float64), 0.0)
    return np.sqrt(np.sum(diff**2, axis=1))


@dataclass(frozen=True)
class DistancePair:
    """d1 and d2 per analysed image of one Figure 5 panel. Shape: (N,) float64 each."""

    d1: np.ndarray
    d2: np.ndarray

    def summary(self) -> dict[str, float | int | None]:
        """n, fraction with d1 < d2, and mean/median of both distances."""
        n = len(self.d1)
        if n == 0:
            return {"n": 0, "fraction_d1_lt_d2": None}
        return {
            "n": n,
            "fraction_d1_lt_d2": float(np.mean(self.d1 < self.d2)),
            "mean_d1": float(np.mean(self.d1)),
            "mean_d2": float(np.mean(self.d2)),
            "median_d1": float(np.median(self.d1)),
            "median_d2": float(np.median(self.d2)),
        }


def panel_distances(
    panel: str,
    Z: np.ndarray,
    Zhat: np.ndarray,
    phi: np.ndarray,
    true: np.ndarray,
    wrong: np.ndarray,
    fraction: float = 0.2,
    scope: str = "per_image",
) -> DistancePair:
    """d1 and d2 of one Figure 5 panel, on the attributes changing most from ``Z`` to ``Ẑ``.

    (a) Eqs. 8-9: ``||Z - Ẑ||`` vs ``||φ(y_n) - φ(y)||``; (b) Eqs. 12-13: the same with
    ``Z`` = ``Ẑ^AT_{n,y_n}`` (AT, correct) against ``Ẑ_{n,y}`` (standard, wrong);
    (c)/(d) Eqs. 10-11 / 14-15: ``||Ẑ - φ(y)||`` vs ``||Ẑ - φ(y_n)||`` (``Z``, the clean
    image's attributes under the same model, only chooses the attributes).

    Shape:
        Z, Zhat: (N, A) predicted attributes, before and after the attack;
        phi: (C, A) class embeddings; true, wrong: (N,) int classes y_n and y.
    """
    if panel not in PANELS:
        raise ValueError(f"panel must be one of {sorted(PANELS)}, got {panel!r}")
    mask = most_changed(Z, Zhat, fraction, scope)
    if panel in ("a", "b"):
        return DistancePair(
            masked_distance(Z, Zhat, mask), masked_distance(phi[true], phi[wrong], mask)
        )
    return DistancePair(
        masked_distance(Zhat, phi[wrong], mask), masked_distance(Zhat, phi[true], mask)
    )


def histograms(
    pairs: dict[str, DistancePair], bins: int = 20
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Counts of d1 and d2 per panel on one shared set of bin edges (Figure 5 data).

    Returns:
        edges (bins+1,) and, per panel, (d1 counts (bins,), d2 counts (bins,)).
    """
    values = [v for p in pairs.values() for v in (p.d1, p.d2) if len(v)]
    hi = float(max((np.max(v) for v in values), default=1.0)) or 1.0
    edges = np.linspace(0.0, hi * 1.0001, bins + 1)
    return edges, {
        k: (np.histogram(p.d1, edges)[0], np.histogram(p.d2, edges)[0]) for k, p in pairs.items()
    }


def histogram_table(pairs: dict[str, DistancePair], bins: int = 20) -> pd.DataFrame:
    """:func:`histograms` as a table: bin centre ``distance``, then ``<panel>_d1``,
    ``<panel>_d2`` counts per panel (one set of bins for every panel).

    Shape:
        returns: ``bins`` rows, 1 + 2 * len(pairs) columns.
    """
    edges, counts = histograms(pairs, bins)
    hist = {"distance": 0.5 * (edges[1:] + edges[:-1])}
    for key, (c1, c2) in counts.items():
        hist[f"{key}_d1"], hist[f"{key}_d2"] = c1, c2
    return pd.DataFrame(hist)


@dataclass(frozen=True)
class ModelAttributes:
    """One model's predictions on the attacked images, clean and adversarial.

    Shape:
        clean, adversarial: (N, A) float predicted attributes (SJE's θ(x)W).
        clean_pred, adv_pred: (N,) int predicted classes.
    """

    clean: np.ndarray
    adversarial: np.ndarray
    clean_pred: np.ndarray
    adv_pred: np.ndarray


def figure5_panels(
    standard: ModelAttributes,
    robust: ModelAttributes,
    phi: np.ndarray,
    true: np.ndarray,
    fraction: float = 0.2,
    scope: str = "per_image",
) -> tuple[dict[str, DistancePair], dict[str, np.ndarray]]:
    """The four Figure 5 panels at one (mode, eps), and which images each one uses.

    (a) and (c) use the images the attack fools on the standard model, (b) those it
    fools there and adversarial training recovers, (d) those that fool the robust model.

    Shape:
        phi: (C, A) class embeddings; true: (N,) int true classes.
        returns: panel -> :class:`DistancePair` over its images; panel -> (N,) bool mask.
    """
    z_std, zh_std = standard.clean, standard.adversarial
    z_at, zh_at = robust.clean, robust.adversarial
    c_std, a_std = standard.clean_pred, standard.adv_pred
    c_at, a_at = robust.clean_pred, robust.adv_pred
    m = {
        "a": fooled(true, c_std, a_std),
        "b": recovered(true, a_std, a_at),
        "c": fooled(true, c_std, a_std),
        "d": fooled(true, c_at, a_at),
    }
    before = {"a": z_std, "b": zh_at, "c": z_std, "d": z_at}
    after = {"a": zh_std, "b": zh_std, "c": zh_std, "d": zh_at}
    wrong = {"a": a_std, "b": a_std, "c": a_std, "d": a_at}
    out = {
        k: panel_distances(k, before[k][r], after[k][r], phi, true[r], wrong[k][r], fraction, scope)
        for k, r in m.items()
    }
    return out, m
