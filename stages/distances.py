"""Stage ``distances``: attribute distances of Eqs. 8-15 and the Figure 5 histograms.

On the top-20% most-changed attributes of SJE's predictions: (a) clean vs adversarial
attributes against the distance of the two classes, (b) the same with AT-recovered
adversarial images, (c) adversarial attributes to the wrong vs the correct class,
(d) the same under adversarial training. Histograms per attack mode at one eps, the
fraction "closer to the wrong class" at every eps of the grid, summary metrics.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from advinterp.analysis.distance_plots import figure5
from advinterp.analysis.distances import (
    DistancePair,
    clean_vs_adversarial,
    histograms,
    l2_rows,
    robust_vs_standard,
    wrong_vs_correct,
)
from advinterp.config.attributes import DistancesConfig
from advinterp.config.core import load
from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key, finite
from advinterp.errors import ParamError, StoreError
from advinterp.grounding.cases import fooled, pick_at_model, recovered
from advinterp.store import atomic_output, open_store, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.distances")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--attack", type=Path, required=True, help="store of stage attack")
    p.add_argument("--sje", type=Path, required=True, help="store of stage sje")
    p.add_argument("--figures", type=Path, required=True, help="directory for figure5_<mode>.png")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True, help="per-image d1/d2 CSV")
    p.add_argument("--histograms", type=Path, required=True, help="Figure 5 bin counts CSV")
    p.add_argument("--curve", type=Path, required=True, help="closer-to-wrong fraction vs eps CSV")
    return p


def panels(
    read, phi: np.ndarray, true: np.ndarray, at: str, mode: str, ek: str, cfg: DistancesConfig
) -> tuple[dict[str, DistancePair], dict[str, np.ndarray]]:
    """The four Figure 5 panels at one (mode, eps), and which images each one uses."""
    norm = l2_rows if cfg.normalize == "l2" else np.asarray
    z_std, zh_std = norm(read(STANDARD, None, "attributes")), norm(read(STANDARD, ek, "attributes"))
    z_at, zh_at = norm(read(at, None, "attributes")), norm(read(at, ek, "attributes"))
    c_std, a_std = read(STANDARD, None, "pred"), read(STANDARD, ek, "pred")
    c_at, a_at = read(at, None, "pred"), read(at, ek, "pred")
    sets = {
        "a": fooled(true, c_std, a_std),
        "b": recovered(true, a_std, a_at),
        "c": fooled(true, c_std, a_std),
        "d": fooled(true, c_at, a_at),
    }
    kw = {"fraction": cfg.fraction, "scope": cfg.scope}
    m = sets  # short name for the masks below
    out = {
        "a": clean_vs_adversarial(
            z_std[m["a"]], zh_std[m["a"]], phi, true[m["a"]], a_std[m["a"]], **kw
        ),
        "b": robust_vs_standard(
            zh_at[m["b"]], zh_std[m["b"]], phi, true[m["b"]], a_std[m["b"]], **kw
        ),
        "c": wrong_vs_correct(
            z_std[m["c"]], zh_std[m["c"]], phi, true[m["c"]], a_std[m["c"]], **kw
        ),
        "d": wrong_vs_correct(z_at[m["d"]], zh_at[m["d"]], phi, true[m["d"]], a_at[m["d"]], **kw),
    }
    return out, sets


def main(args: argparse.Namespace) -> None:
    setup_base(args.params)
    cfg = load(DistancesConfig, args.params)
    attack = open_store(args.attack, {"rows": 1, "labels": 1})
    sje = open_store(args.sje, {"class_embeddings": 2, "rows": 1})
    layout = ChainLayout.from_attrs(sje.attrs, str(args.sje))
    if not any(math.isclose(cfg.eps, e) for e in layout.eps):
        raise ParamError(f"distances.eps: {cfg.eps} is not in the attack's eps grid {layout.eps}")
    try:
        at = pick_at_model(layout.models, cfg.eps, cfg.at_model)
    except ValueError as err:
        raise ParamError(f"distances.at_model: {err}") from None
    # Check every array the analysis reads before writing anything.
    layout.require(
        sje, str(args.sje), per_model=("clean/attributes", "clean/pred"), per_set=("attributes",)
    )
    if cfg.classifier == "softmax":
        layout.require(attack, str(args.attack), per_model=("clean_pred",), per_set=("pred",))
    else:
        layout.require(sje, str(args.sje), per_set=("pred",))
    rows, true = sje["rows"][:], sje["labels"][:]
    phi = sje["class_embeddings"][:]

    def read_for(mode: str):
        def read(model: str, ek: str | None, what: str) -> np.ndarray:
            """Predictions or attributes of the attacked subset (clean when ``ek`` is None)."""
            if what == "pred" and cfg.classifier == "softmax":
                store, origin, clean_path = attack, args.attack, f"{model}/clean_pred"
            else:  # SJE's clean arrays cover every dataset row: take the attacked ones
                store, origin, clean_path = sje, args.sje, f"{model}/clean/{what}"
            path = clean_path if ek is None else f"{model}/{mode}/{ek}/{what}"
            if path not in store:
                raise StoreError(f"{origin}: missing '{path}' (rerun the stage that makes it)")
            data = store[path][:]
            if what == "attributes":
                finite(data, f"{origin}/{path}")
            return data[rows] if ek is None and store is sje else data

        return read

    metrics: dict[str, object] = {
        "eps": cfg.eps,
        "at_model": at,
        "classifier": cfg.classifier,
        "fraction": cfg.fraction,
        "normalize": cfg.normalize,
    }
    table, curve = [], []
    all_pairs: dict[str, DistancePair] = {}
    ek = eps_key(cfg.eps)
    figures = {}  # written with the other outputs, once everything is computed
    for mode in MODES:
        pairs, sets = panels(read_for(mode), phi, true, at, mode, ek, cfg)
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
    for e in layout.eps:
        point: dict[str, float | None] = {"eps": e}
        for mode in MODES:
            pairs, _ = panels(read_for(mode), phi, true, at, mode, eps_key(e), cfg)
            for k in ("a", "c", "d"):
                point[f"{mode}_{k}"] = pairs[k].summary()["fraction_d1_lt_d2"]
                point[f"{mode}_{k}_n"] = len(pairs[k].d1)
        curve.append(point)
    metrics["closer_to_wrong_class"] = {
        mode: metrics[mode]["c"]["fraction_d1_lt_d2"]
        for mode in MODES  # type: ignore[index]
    }
    metrics["closer_to_wrong_class_at"] = {
        mode: metrics[mode]["d"]["fraction_d1_lt_d2"]
        for mode in MODES  # type: ignore[index]
    }
    for mode, fig in figures.items():
        with atomic_output(args.figures / f"figure5_{mode}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=cfg.figure.dpi)
    with atomic_output(args.table) as tmp:
        pd.DataFrame(table, columns=["mode", "panel", "row", "d1", "d2"]).to_csv(tmp, index=False)
    edges, counts = histograms(all_pairs, cfg.bins)  # one set of bins for every panel
    hist = {"distance": 0.5 * (edges[1:] + edges[:-1])}
    for key, (c1, c2) in counts.items():
        hist[f"{key}_d1"], hist[f"{key}_d2"] = c1, c2
    with atomic_output(args.histograms) as tmp:
        pd.DataFrame(hist).to_csv(tmp, index=False)
    with atomic_output(args.curve) as tmp:
        pd.DataFrame(curve).to_csv(tmp, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
