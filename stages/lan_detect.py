"""Stage ``lan_detect``: Nguyen et al. Tables 1-4, ROC/AUC and the Figure 3 analogue.

An image is flagged adversarial when f2's class for its LAN mask differs from f1's class.
Evaluated on ``lan_attacks``' FGSM/JSMA/C&W examples (direct and transfer) against as many
benign test images, and, when given, on the attribute chain's IFGSM examples.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.analysis.detection import (
    balanced_benign,
    detection_row,
    detection_score,
    roc,
)
from advinterp.config.core import load
from advinterp.config.lan import LanDetectConfig
from advinterp.data.adversarial import STANDARD, ChainLayout
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.dataset import TEST
from advinterp.errors import StoreError
from advinterp.explainers.lan import attention_masks, lan_from_state
from advinterp.explainers.lan_figures import invariance_figure, roc_figure
from advinterp.models.checkpoint import load_classifier, read_weights_file
from advinterp.models.mask_classifier import mask_classifier_from_state, predict_proba
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, open_store, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.lan_detect")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="f1 checkpoint")
    p.add_argument("--lan", type=Path, required=True, help="g checkpoint (lan_train)")
    p.add_argument("--masks", type=Path, required=True, help="benign masks (lan_train)")
    p.add_argument("--mask-classifier", type=Path, required=True, help="f2 checkpoint")
    p.add_argument("--adversarial", type=Path, required=True, help="lan_attacks store")
    p.add_argument("--ifgsm", type=Path, default=None, help="attack stage store (optional)")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--roc", type=Path, required=True, help="directory of ROC CSVs")
    p.add_argument("--roc-figure", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True, help="Figure 3 analogue (PNG)")
    return p


def _load(path: Path, from_state, device):
    try:
        return from_state(read_weights_file(path, device)).to(device)
    except ValueError as err:
        raise StoreError(f"{path}: {err}") from None


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(LanDetectConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    f1 = load_classifier(args.model, device, num_classes=len(index.class_names))
    lan = _load(args.lan, lan_from_state, device)
    f2 = _load(args.mask_classifier, mask_classifier_from_state, device)
    benign_masks = open_store(args.masks, {"masks": 4})["masks"]
    adv_store = open_store(
        args.adversarial, {"images": 4, "rows": 1, "labels": 1, "f1_pred": 1, "setting": 1}
    )
    bs = cfg.batch_size

    def f1_classes(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (
                np.concatenate(
                    [
                        f1(torch.as_tensor(x[s : s + bs], device=device)).argmax(1).cpu().numpy()
                        for s in range(0, len(x), bs)
                    ]
                )
                if len(x)
                else np.zeros(0, np.int64)
            )

    def f2_of_images(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(masks, f2 probabilities) of adversarial images."""
        m = attention_masks(lan, x, bs, device)
        return m, predict_proba(f2, m, bs, device).numpy()

    # Benign side: every test image, f1's class and f2's class on its (stored) mask.
    n = index.num_samples
    test_rows = np.flatnonzero(index.split == TEST)
    test_images = np.asarray(group["images"].get_orthogonal_selection((test_rows,)))
    test_masks = np.asarray(benign_masks.get_orthogonal_selection((test_rows,)))
    b_f1 = np.full(n, -1, np.int64)
    b_f2 = np.full(n, -1, np.int64)
    b_score = np.full(n, np.nan)
    b_f1[test_rows] = f1_classes(test_images)
    proba = predict_proba(f2, test_masks, bs, device).numpy()
    b_f2[test_rows] = proba.argmax(1)
    b_score[test_rows] = detection_score(proba, b_f1[test_rows])
    labels = index.labels
    order = np.random.default_rng(base.seed).permutation(test_rows)
    good_masks = test_rows[b_f2[test_rows] == labels[test_rows]]  # Table 4's subset

    rows_out: dict[str, dict] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray, float | None]] = {}
    adv_cache: dict[str, dict[str, np.ndarray]] = {}

    def evaluate(name: str, src: np.ndarray, y: np.ndarray, a_f1: np.ndarray, x: np.ndarray):
        masks, p = f2_of_images(x)
        a_f2 = p.argmax(1)
        a_score = detection_score(p, a_f1)
        adv_cache[name] = {"rows": src, "images": x, "masks": masks, "f1": a_f1, "f2": a_f2}
        result = {}
        for table, restrict in (("all", None), ("good_masks", good_masks)):
            sel = np.ones(len(src), bool) if restrict is None else np.isin(src, restrict)
            ben = balanced_benign(
                test_rows if restrict is None else restrict, int(sel.sum()), order
            )
            row = detection_row(
                adv_f1=a_f1[sel],
                adv_f2=a_f2[sel],
                adv_f2_benign=b_f2[src[sel]],
                adv_labels=y[sel],
                benign_f1=b_f1[ben],
                benign_f2=b_f2[ben],
                adv_scores=a_score[sel],
                benign_scores=b_score[ben],
            )
            result[table] = row.as_dict()
            if restrict is None:
                curves[name] = roc(a_score[sel], b_score[ben])
        rows_out[name] = result
        log.info("%s: %s", name, result["all"])

    settings = list(adv_store.attrs["settings"])
    code = np.asarray(adv_store["setting"][:])
    adv_rows = np.asarray(adv_store["rows"][:])
    adv_labels = np.asarray(adv_store["labels"][:])
    adv_f1 = np.asarray(adv_store["f1_pred"][:])
    for k, name in enumerate(settings):
        sel = np.flatnonzero(code == k)
        x = (
            np.asarray(adv_store["images"].get_orthogonal_selection((sel,)))
            if len(sel)
            else (np.zeros((0, *adv_store["images"].shape[1:]), np.float32))
        )
        evaluate(name, adv_rows[sel], adv_labels[sel], adv_f1[sel], x)

    ifgsm_done = False
    if args.ifgsm is not None:
        chain = open_store(args.ifgsm, {"rows": 1, "labels": 1})
        layout = ChainLayout.from_attrs(chain.attrs, str(args.ifgsm))
        c_rows = np.asarray(chain["rows"][:])
        c_labels = np.asarray(chain["labels"][:])
        clean_pred = np.asarray(chain[f"{STANDARD}/clean_pred"][:])
        for entry, mode, _eps, path in layout.adversarial_sets():
            if entry.key != STANDARD:
                continue
            pred = np.asarray(chain[f"{path}/pred"][:])
            sel = np.flatnonzero((clean_pred == c_labels) & (pred != c_labels))
            x = (
                np.asarray(chain[f"{path}/images"].get_orthogonal_selection((sel,)))
                if len(sel)
                else np.zeros((0, *chain[f"{path}/images"].shape[1:]), np.float32)
            )
            evaluate(
                f"ifgsm/{mode}/{path.rsplit('/', 1)[1]}", c_rows[sel], c_labels[sel], pred[sel], x
            )
        ifgsm_done = True

    def table(prefix: str, key: str, fields: tuple[str, ...]) -> dict:
        return {
            name.split("/", 1)[1]: {f: rows_out[name][key][f] for f in fields}
            for name in rows_out
            if name.startswith(prefix + "/")
        }

    rates = ("true_positive", "true_negative", "n_adversarial", "n_benign")
    metrics = {
        "f1_test_accuracy": float((b_f1[test_rows] == labels[test_rows]).mean()),
        "f2_test_accuracy": float((b_f2[test_rows] == labels[test_rows]).mean()),
        "benign_true_negative_all_test": float((b_f1[test_rows] == b_f2[test_rows]).mean()),
        "table1_mask_class_kept": {
            name: rows_out[name]["all"]["mask_class_kept"] for name in rows_out
        },
        "table2_direct": table("direct", "all", rates),
        "table3_transfer": table("transfer", "all", rates),
        "table4_good_masks": {
            name: {f: rows_out[name]["good_masks"][f] for f in (*rates, "recovery")}
            for name in rows_out
            if not name.startswith("ifgsm/")
        },
        "auc": {name: rows_out[name]["all"]["auc"] for name in rows_out},
        "ifgsm": table("ifgsm", "all", (*rates, "mask_class_kept", "auc"))
        if ifgsm_done
        else "not evaluated (no --ifgsm store given)",
    }
    write_json(args.metrics, metrics)

    with atomic_output(args.roc) as tmp:
        tmp.mkdir()
        for name, (fpr, tpr, _auc) in curves.items():
            pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(
                tmp / f"{name.replace('/', '_')}.csv", index=False
            )
    with atomic_output(args.roc_figure) as tmp:
        shown = {k: v for k, v in curves.items() if not k.startswith("ifgsm/")}
        # The chain's eps grid is long: the paper's three budgets keep the plot readable.
        keys = {f"ifgsm/untargeted/eps_{e}" for e in ("0.01", "0.06", "0.12")}
        shown.update({k: v for k, v in curves.items() if k in keys})
        roc_figure(shown, dpi=cfg.figure.dpi).savefig(tmp, format="png")

    # Figure 3 analogue: benign test images fooled by the most direct attacks (all three
    # when possible), with their adversarial versions; image titles give f1's class, mask
    # titles f2's.
    names = index.class_names
    direct = [s for s in settings if s.startswith("direct/")]
    hits = {
        int(r): sum(int(r in set(adv_cache[s]["rows"].tolist())) for s in direct) for r in test_rows
    }
    picks = sorted(test_rows.tolist(), key=lambda r: (-hits[r], b_f2[r] != labels[r], r))
    examples = []
    for r in picks[: cfg.figure_examples]:
        i = int(np.flatnonzero(test_rows == r)[0])
        ex = [
            (test_images[i], test_masks[i], f"benign: f1 {names[b_f1[r]]}", f"f2 {names[b_f2[r]]}")
        ]
        for s in direct:
            c = adv_cache[s]
            for j in np.flatnonzero(c["rows"] == r)[:1]:
                ex.append(
                    (
                        c["images"][j],
                        c["masks"][j],
                        f"{s.split('/')[1]}: f1 {names[c['f1'][j]]}",
                        f"f2 {names[c['f2'][j]]}",
                    )
                )
        examples.append(ex)
    with atomic_output(args.figure) as tmp:
        invariance_figure(examples, dpi=cfg.figure.dpi).savefig(tmp, format="png")


if __name__ == "__main__":
    run(main, build)
