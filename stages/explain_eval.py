"""Stage ``explain_eval``: how well explainers recover localized attacks (Göpfert et al. Sec. 4).

For n = 1..20 LIME superpixels and the same pixel counts for the gradient explainers
and the random baseline: Jaccard index (Eq. 2) and Hamming likeness (Eq. 3) against
the attack region, per-example ranks and their means (Table 1), mean curves (Fig. 4),
example panels (Fig. 3), the same scores on the clean source images as a control, and
how much each explanation moves between a clean image and its adversarial versions.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from advinterp.analysis.localization import (
    evaluate_examples,
    lime_pixel_scores,
    mean_rank_table,
    positive_l1,
    rank_explainers,
    superpixel_unions,
    top_pixel_masks,
    top_set_overlap,
)
from advinterp.analysis.localization_figures import (
    curves_figure,
    examples_figure,
    side_by_side_figure,
)
from advinterp.config.core import load
from advinterp.config.localized import ExplainEvalConfig
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.random_baseline import expected_hamming, expected_jaccard
from advinterp.store import atomic_output, open_store, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.explain_eval")
RANKED = ("saliency", "guided_backprop", "lime")  # Table 1
ALL = (*RANKED, "random")
GRADIENT = ("saliency", "guided_backprop")
PAPER_TABLE1 = {
    "saliency": {"jaccard": 2.58, "hamming": 2.59},
    "guided_backprop": {"jaccard": 2.06, "hamming": 2.03},
    "lime": {"jaccard": 1.36, "hamming": 1.38},
}


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--explanations", type=Path, required=True, help="explain stage store")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--jaccard", type=Path, required=True, help="Fig. 4 curve CSV (Eq. 2)")
    p.add_argument("--hamming", type=Path, required=True, help="Fig. 4 curve CSV (Eq. 3)")
    p.add_argument("--per-example", type=Path, required=True, help="long CSV of every score")
    p.add_argument("--figure-examples", type=Path, required=True, help="Fig. 3-style PNG")
    p.add_argument("--figure-curves", type=Path, required=True, help="Fig. 4-style PNG")
    p.add_argument("--figure-sets", type=Path, required=True, help="clean/IFGSM/localized PNG")
    return p


SET_ARRAYS = (
    "rows",
    "saliency",
    "guided_backprop",
    "random",
    "lime_segments",
    "lime_top",
    "lime_weights",
)
MAPS = ("saliency", "guided_backprop", "random")


def read_set(root: Any, name: str, origin: Path) -> dict[str, np.ndarray]:
    """Arrays of one explained image set, checked: present, and maps free of NaN/inf."""
    if name not in root:
        raise StoreError(f"{origin}: missing group '{name}' (rerun explain)")
    out = {key: np.asarray(arr[:]) for key, arr in root[name].arrays()}
    need = SET_ARRAYS + (("region", "clean_index") if name == "localized" else ())
    for key in need:
        if key not in out:
            raise StoreError(f"{origin}: missing array '{name}/{key}' (rerun explain)")
    for key in MAPS:
        if not np.isfinite(out[key]).all():
            raise StoreError(f"{origin}: '{name}/{key}' holds NaN or inf values")
    return out


def pixel_maps(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Relevance maps ranked by the evaluation: positive-gradient l1 norm, random scores."""
    return {
        "saliency": positive_l1(s["saliency"]),
        "guided_backprop": positive_l1(s["guided_backprop"]),
        "random": s["random"],
    }


def lime_maps(s: dict[str, np.ndarray]) -> np.ndarray:
    return (
        np.stack(
            [
                lime_pixel_scores(s["lime_segments"][i], s["lime_top"][i], s["lime_weights"][i])
                for i in range(len(s["lime_top"]))
            ]
        )
        if len(s["lime_top"])
        else np.zeros(s["lime_segments"].shape)
    )


def nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN (NaN where every value is NaN), without warnings."""
    ok = ~np.isnan(a)
    count = ok.sum(0)
    return np.where(count > 0, np.where(ok, a, 0.0).sum(0) / np.maximum(count, 1), np.nan)


def normalise(m: np.ndarray) -> np.ndarray:
    top = float(np.max(m)) if m.size else 0.0
    return m / top if top > 0 else m


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(ExplainEvalConfig, args.params)
    root = open_store(args.explanations)
    sets = list(root.attrs.get("sets", []))
    if "localized" not in sets or "clean" not in sets:
        raise StoreError(f"{args.explanations}: needs the 'localized' and 'clean' sets")
    loc = read_set(root, "localized", args.explanations)
    clean = read_set(root, "clean", args.explanations)
    top = loc["lime_top"].shape[1]
    if cfg.max_superpixels > top:
        raise ParamError(
            f"{args.params}: explain_eval.max_superpixels={cfg.max_superpixels} exceeds the "
            f"{top} superpixels the explain stage kept (explain.lime_top)"
        )
    E = len(loc["rows"])
    if E == 0:
        raise StoreError(f"{args.explanations}: no localized adversarial examples to evaluate")
    n_max = cfg.max_superpixels
    h, w = loc["region"].shape[1:]
    total = h * w
    tie = np.random.default_rng([base.seed, 11]).random((h, w))
    regions = loc["region"].astype(bool)

    adv = evaluate_examples(
        regions, loc["lime_segments"], loc["lime_top"], pixel_maps(loc), n_max, tie, ALL
    )
    ci = loc["clean_index"]
    clean_of = {k: v[ci] for k, v in clean.items() if len(v) == len(clean["rows"])}
    control = evaluate_examples(
        regions,
        clean_of["lime_segments"],
        clean_of["lime_top"],
        pixel_maps(clean_of),
        n_max,
        tie,
        ALL,
    )

    # Table 1 over the three explainers, and a 4-way ranking including random.
    table = mean_rank_table(adv.jaccard[..., :3], adv.hamming[..., :3], RANKED)
    table4 = mean_rank_table(adv.jaccard, adv.hamming, ALL)
    ranks_j = rank_explainers(adv.jaccard[..., :3])
    ranks_h = rank_explainers(adv.hamming[..., :3])
    ranked = int((~np.isnan(ranks_j).any(-1)).sum())

    n = np.arange(1, n_max + 1)
    exp_j = np.full((E, n_max), np.nan)
    exp_h = np.full((E, n_max), np.nan)
    for e in range(E):
        c = int(regions[e].sum())
        for i in range(int(adv.n_valid[e])):
            exp_j[e, i] = expected_jaccard(int(adv.sizes[e, i]), c, total)
            exp_h[e, i] = expected_hamming(int(adv.sizes[e, i]), c, total)
    counts = (~np.isnan(adv.jaccard[..., 0])).sum(0)
    curves = {}
    for metric, values, expected in (
        ("jaccard", adv.jaccard, exp_j),
        ("hamming", adv.hamming, exp_h),
    ):
        mean = nanmean0(values)
        frame = pd.DataFrame({"n": n})
        for x, name in enumerate(ALL):
            frame[name] = mean[:, x]
        frame["random_expected"] = nanmean0(expected)
        frame["examples"] = counts
        curves[metric] = frame
    with atomic_output(args.jaccard) as tmp:
        curves["jaccard"].to_csv(tmp, index=False, float_format="%.6g")
    with atomic_output(args.hamming) as tmp:
        curves["hamming"].to_csv(tmp, index=False, float_format="%.6g")

    long = []
    for x, name in enumerate(ALL):
        frame = pd.DataFrame(
            {
                "example": np.repeat(np.arange(E), n_max),
                "row": np.repeat(loc["rows"], n_max),
                "n": np.tile(n, E),
                "pixels": adv.sizes.ravel(),
                "region_pixels": np.repeat(regions.reshape(E, -1).sum(1), n_max),
                "explainer": name,
                "jaccard": adv.jaccard[..., x].ravel(),
                "hamming": adv.hamming[..., x].ravel(),
                "rank_jaccard": ranks_j[..., x].ravel() if x < 3 else np.nan,
                "rank_hamming": ranks_h[..., x].ravel() if x < 3 else np.nan,
                "clean_jaccard": control.jaccard[..., x].ravel(),
            }
        )
        long.append(frame.dropna(subset=["jaccard"]))
    with atomic_output(args.per_example) as tmp:
        pd.concat(long).to_csv(tmp, index=False, float_format="%.6g")

    # Item 4: how far each explanation moves between a clean image and its adversarial.
    k = max(1, round(cfg.overlap_fraction * total))
    clean_maps = {**pixel_maps(clean), "lime": lime_maps(clean)}
    overlap: dict[str, dict[str, float]] = {}
    set_maps: dict[str, dict[str, np.ndarray]] = {"clean": clean_maps}
    other = {"localized": loc}
    if "ifgsm" in sets:
        other["ifgsm"] = read_set(root, "ifgsm", args.explanations)
    for name, s in other.items():
        maps = {**pixel_maps(s), "lime": lime_maps(s)}
        set_maps[name] = maps
        overlap[name] = {
            ex: float(
                np.mean(
                    [
                        top_set_overlap(maps[ex][i], clean_maps[ex][s["clean_index"][i]], k, tie)
                        for i in range(len(s["rows"]))
                    ]
                )
            )
            if len(s["rows"])
            else float("nan")
            for ex in RANKED
        }

    mean_j = nanmean0(adv.jaccard.reshape(-1, len(ALL)))
    mean_h = nanmean0(adv.hamming.reshape(-1, len(ALL)))
    best_j = np.nanmax(adv.jaccard, axis=1)  # (E, X) best size per example
    ctrl_j = nanmean0(control.jaccard.reshape(-1, len(ALL)))
    metrics = {
        "examples": E,
        "explanations_ranked": ranked,
        "mean_rank": table,
        "mean_rank_with_random": table4,
        "paper_mean_rank": PAPER_TABLE1,
        "mean_jaccard": dict(zip(ALL, mean_j.tolist(), strict=True)),
        "mean_hamming": dict(zip(ALL, mean_h.tolist(), strict=True)),
        "mean_best_jaccard": dict(zip(ALL, nanmean0(best_j).tolist(), strict=True)),
        "random_expected_jaccard": float(np.nanmean(exp_j)),
        "clean_control_mean_jaccard": dict(zip(ALL, ctrl_j.tolist(), strict=True)),
        "explanation_overlap_with_clean": {"top_fraction": cfg.overlap_fraction, **overlap},
        "lime_positive_superpixels_mean": float(np.mean(adv.n_valid)),
        "lime_segments_mean": float(np.mean(loc["lime_num_segments"])),
        "region_fraction_mean": float(regions.reshape(E, -1).mean()),
    }
    write_json(args.metrics, metrics)
    log.info(
        "mean ranks (Jaccard): %s",
        ", ".join(f"{k} {v['jaccard']:.2f}" for k, v in table.items()),
    )

    # Figure 3: examples spread over the set, each at the size where LIME does best.
    picks = np.unique(np.linspace(0, E - 1, min(cfg.figure_examples, E)).round().astype(int))
    masks, scores, titles, cleans = [], [], [], []
    for e in picks:
        i = int(np.nanargmax(adv.jaccard[e, :, 2])) if adv.n_valid[e] else 0
        ids = [int(v) for v in loc["lime_top"][e] if v >= 0]
        size = int(adv.sizes[e, i])
        m = {name: top_pixel_masks(pixel_maps(loc)[name][e], [size], tie)[0] for name in GRADIENT}
        m["lime"] = superpixel_unions(loc["lime_segments"][e], ids, i + 1)[i]
        m["random"] = top_pixel_masks(loc["random"][e], [size], tie)[0]
        masks.append(m)
        scores.append({name: float(adv.jaccard[e, i, x]) for x, name in enumerate(ALL)})
        titles.append(f"row {loc['rows'][e]}, n={i + 1}")
        cleans.append(clean["images"][ci[e]])
    fig = examples_figure(
        cleans,
        [loc["images"][e] for e in picks],
        [regions[e] for e in picks],
        masks,
        titles,
        scores,
    )
    with atomic_output(args.figure_examples) as tmp:
        fig.savefig(tmp, dpi=cfg.figure.dpi, format="png")
    plt.close(fig)

    fig = curves_figure(
        n,
        {name: curves["jaccard"][name].to_numpy() for name in ALL},
        {name: curves["hamming"][name].to_numpy() for name in ALL},
        {name: nanmean0(control.jaccard[..., x]) for x, name in enumerate(RANKED)},
        {name: nanmean0(control.hamming[..., x]) for x, name in enumerate(RANKED)},
        (
            curves["jaccard"]["random_expected"].to_numpy(),
            curves["hamming"]["random_expected"].to_numpy(),
        ),
    )
    with atomic_output(args.figure_curves) as tmp:
        fig.savefig(tmp, dpi=cfg.figure.dpi, format="png")
    plt.close(fig)

    # Side by side: clean | full-image IFGSM | localized, for shared source images first.
    rows_fig, titles_fig = [], []
    loc_by_clean: dict[int, int] = {}
    for i, c in enumerate(ci):
        loc_by_clean.setdefault(int(c), i)  # the largest attacked region of that image
    ifgsm_by_clean = (
        {int(c): i for i, c in enumerate(other["ifgsm"]["clean_index"])} if "ifgsm" in other else {}
    )
    order = sorted(loc_by_clean, key=lambda c: (c not in ifgsm_by_clean, c))
    for c in order[: cfg.figure_examples]:
        entries = [
            ("clean", clean["images"][c], {x: normalise(set_maps["clean"][x][c]) for x in RANKED})
        ]
        if c in ifgsm_by_clean:
            j = ifgsm_by_clean[c]
            entries.append(
                (
                    "full-image IFGSM",
                    other["ifgsm"]["images"][j],
                    {x: normalise(set_maps["ifgsm"][x][j]) for x in RANKED},
                )
            )
        j = loc_by_clean[c]
        entries.append(
            (
                "localized",
                loc["images"][j],
                {x: normalise(set_maps["localized"][x][j]) for x in RANKED},
            )
        )
        rows_fig.append(entries)
        titles_fig.append(f"row {clean['rows'][c]}")
    fig = side_by_side_figure(rows_fig, titles_fig)
    with atomic_output(args.figure_sets) as tmp:
        fig.savefig(tmp, dpi=cfg.figure.dpi, format="png")
    plt.close(fig)


if __name__ == "__main__":
    run(main, build)
