"""The comparison as numbers: ``dvc metrics`` JSON and the markdown table the README shows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from advinterp.comparison.registry import DELTA, METHODS, REFERENCES
from advinterp.errors import StoreError
from advinterp.markdown import table

if TYPE_CHECKING:  # the report imports this module: it needs no torch
    from advinterp.comparison.study import Comparison


def _num(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else round(v, 4)


def comparison_metrics(c: Comparison) -> dict[str, Any]:
    """Overlap per reference and method (over all groups: scores.csv has each group),
    each method's agreement with |δ| and with the other methods, and the settings."""
    s = c.summary
    overlap: dict[str, Any] = {}
    for ref in REFERENCES:
        part = s[s["reference"] == ref]
        if part.empty:
            continue
        overlap[ref] = {
            row.method: {
                "mean": _num(row.mean),
                "sd": _num(row.sd),
                "n": int(row.n),
                "random": _num(row.random),
                "above_random": bool(row.above_random),
                "prior_lift": _num(row.prior_lift),
                "above_prior": bool(row.above_prior),
            }
            for row in part[part["group"] == "all"].itertuples()
        }
    return {
        **{k: v for k, v in c.info.items() if k != "methods"},
        "overlap": overlap,
        "agreement": agreement_summary(c),
    }


def agreement_summary(c: Comparison) -> dict[str, Any]:
    """Per method: Spearman and top-k Jaccard with |δ|, and the mean Spearman with the
    other methods (the baselines and |δ| left out)."""
    a = c.agreement
    methods = [m.name for m in METHODS if m.method != "baseline"]
    out: dict[str, Any] = {"jaccard_random": _num(a["jaccard_random"].iloc[0]) if len(a) else None}
    for name in methods:
        with_delta = a[(a["a"] == name) & (a["b"] == DELTA)].iloc[0]
        others = a[(a["a"] == name) & a["b"].isin([m for m in methods if m != name])]
        out[name] = {
            "spearman_delta": _num(with_delta.spearman),
            "jaccard_delta": _num(with_delta.jaccard),
            "spearman_others": _num(np.nanmean(others["spearman"])) if len(others) else None,
        }
    return out


def read_summary(path: Path | str) -> pd.DataFrame:
    """The ``compare`` stage's ``scores.csv``.

    Raises:
        StoreError: naming the file when it is missing or not the summary.
    """
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise StoreError(f"{path}: not found (run the compare stage first)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise StoreError(f"{path}: not a CSV: {' '.join(str(err).split())}") from None
    missing = {
        "reference",
        "group",
        "method",
        "mean",
        "sd",
        "random",
        "above_random",
        "above_prior",
    }
    missing -= set(frame)
    if missing:
        raise StoreError(f"{path}: not compare's summary (no columns {sorted(missing)})")
    return frame


def overlap_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per method of :data:`METHODS`, one column per reference: ``mean ± sd
    (random)``, ✓ where above random by more than 2 standard errors, ★ where above the
    centre prior by more than 2 standard errors of the paired differences; all groups."""
    refs = [r for r in REFERENCES if (summary["reference"] == r).any()]
    allg = summary[summary["group"] == "all"]
    rows = []
    for m in METHODS:
        row = {
            "method": m.label + (" (class-level)" if m.level == "class" else ""),
            "explains": m.model,
        }
        for ref in refs:
            hit = allg[(allg["reference"] == ref) & (allg["method"] == m.name)]
            n = int(allg.loc[allg["reference"] == ref, "n"].max())
            key = f"vs {REFERENCES[ref]} (n = {n})"
            if hit.empty:
                row[key] = "n/a"
                continue
            r = hit.iloc[0]
            mark = (" ✓" if r.above_random else "") + (" ★" if r.above_prior else "")
            row[key] = f"{r['mean']:.2f} ± {r.sd:.2f} ({r.random:.2f}){mark}"
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_markdown(c: Comparison) -> str:
    """:func:`overlap_table` with each method's agreement with |δ| and with the other
    methods, and a line saying how to read it."""
    frame = overlap_table(c.summary)
    agree = agreement_summary(c)
    frame["ρ with |δ|"] = [_fmt(agree.get(m.name, {}).get("spearman_delta")) for m in METHODS]
    frame["mean ρ with the others"] = [
        _fmt(agree.get(m.name, {}).get("spearman_others")) for m in METHODS
    ]
    header = [str(h).replace("|", "\\|") for h in frame.columns]  # a literal | splits a cell
    counts = ", ".join(f"{v} {g}" for g, v in c.info["examples"].items())
    return (
        f"Examples: {counts}; k = {c.info['k']} of {c.info['pixels']} pixels. "
        "Overlap = share of a map's top-|R| pixels inside the reference R; in brackets "
        "the exact expectation for a random map; ✓ = above it by more than 2 standard "
        "errors; ★ = above the centre prior on the same examples by more than 2 standard "
        "errors of the paired differences. ρ: Spearman rank correlation over pixels "
        "(random: 0).\n\n"
        + table([[str(v) for v in row] for row in frame.itertuples(index=False)], header)
        + "\n"
    )


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
