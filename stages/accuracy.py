"""Stage ``accuracy``: Figure 4 of Gulshad et al., softmax vs SJE accuracy against eps.

For every model (standard and adversarially trained), attack mode and eps: top-1
accuracy of the softmax classifier (argmax of the model's logits) and of SJE (nearest
class embedding) on the clean and the adversarial images of the attacked test subset.
Writes the long table, the Figure 4 curves per mode for ``dvc plots``, the figure and
headline metrics (layout in docs/artifacts.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from advinterp.analysis.accuracy_curves import (
    TABLE_COLUMNS,
    accuracy_rows,
    figure4_curves,
    plot_figure4,
)
from advinterp.config.attributes import AccuracyConfig
from advinterp.config.core import load
from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key, finite
from advinterp.errors import StoreError
from advinterp.store import atomic_output, open_store, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.accuracy")
HEADLINE_EPS = (0.01, 0.06, 0.12)


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--features", type=Path, required=True, help="store of stage adv_features")
    p.add_argument("--sje", type=Path, required=True, help="store of stage sje")
    p.add_argument("--table", type=Path, required=True, help="long accuracy CSV")
    p.add_argument(
        "--curves", type=Path, required=True, help="directory for curves_<mode>.csv (Figure 4)"
    )
    p.add_argument("--figure", type=Path, required=True, help="Figure 4 PNG")
    p.add_argument("--metrics", type=Path, required=True)
    return p


def headline(table: pd.DataFrame, curves: dict[str, pd.DataFrame]) -> dict:
    """Clean accuracies and Figure 4's values at the paper's eps (0.01, 0.06, 0.12)."""
    clean = table[(table["images"] == "clean")].drop_duplicates(["model", "classifier"])
    out: dict = {
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


def main(args: argparse.Namespace) -> None:
    setup_base(args.params)
    cfg = load(AccuracyConfig, args.params)
    feats = open_store(args.features, {"labels": 1})
    sje = open_store(args.sje, {"labels": 1})
    layout = ChainLayout.from_attrs(feats.attrs, str(args.features))
    if ChainLayout.from_attrs(sje.attrs, str(args.sje)) != layout:
        raise StoreError(f"{args.sje}: made from other adversarial examples than {args.features}")
    layout.require(feats, str(args.features), per_model=("clean/logits",), per_set=("logits",))
    layout.require(sje, str(args.sje), per_model=("clean/pred",), per_set=("pred",))
    labels = feats["labels"][:]
    rows = feats["rows"][:]
    records: list[dict] = []
    for entry in layout.models:
        clean = {
            "softmax": finite(
                feats[f"{entry.key}/clean/logits"].oindex[rows],
                f"{args.features}/{entry.key}/clean/logits",
            ).argmax(1),
            "sje": sje[f"{entry.key}/clean/pred"].oindex[rows],
        }
        adversarial = {}
        for mode in layout.modes:
            for e, ek in zip(layout.eps, layout.eps_keys, strict=True):
                adversarial[(mode, e)] = {
                    "softmax": finite(
                        feats[f"{entry.key}/{mode}/{ek}/logits"][:],
                        f"{args.features}/{entry.key}/{mode}/{ek}/logits",
                    ).argmax(1),
                    "sje": sje[f"{entry.key}/{mode}/{ek}/pred"][:],
                }
        records += accuracy_rows(
            model=entry.key,
            train_eps=entry.train_eps,
            labels=labels,
            clean=clean,
            adversarial=adversarial,
        )
    table = pd.DataFrame(records, columns=list(TABLE_COLUMNS))
    if tuple(layout.modes) != MODES:
        raise StoreError(f"{args.features}: expected attack modes {MODES}, found {layout.modes}")
    curves = {mode: figure4_curves(table, mode, STANDARD) for mode in MODES}
    for mode, c in curves.items():
        log.info("%s:\n%s", mode, c.to_string(index=False, float_format="%.3f"))

    with atomic_output(args.table) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(args.curves) as tmp:
        tmp.mkdir()
        for mode, c in curves.items():
            c.to_csv(tmp / f"curves_{mode}.csv", index=False)
    fig = plot_figure4(curves, dpi=cfg.figure.dpi)
    try:
        with atomic_output(args.figure) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    write_json(args.metrics, headline(table, curves))


if __name__ == "__main__":
    run(main, build)
