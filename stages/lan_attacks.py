"""Stage ``lan_attacks``: FGSM, JSMA and C&W examples that fool f1 (Nguyen et al. Sec. 3).

Direct setting: crafted against f1. Transfer setting (their Table 3): crafted against a
second architecture trained here on the same data, then given to f1. Both start from a
class-stratified subset of test images f1 classifies correctly; only examples that fool
f1 (f1(x*) != true class) are kept.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.attacks.suite import ATTACKS, craft, perturbation_norms, predict
from advinterp.config.core import load
from advinterp.config.lan import LanAttacksConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, stratified_subset
from advinterp.errors import ParamError
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.classifier import ImageClassifier, available_archs, build_classifier
from advinterp.models.training import fit, make_optimizer
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, create_group, sample_chunk_size, write_array, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.lan_attacks")
SHUFFLE_BUFFER = 8192
SETTINGS = ("direct", "transfer")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="f1 checkpoint")
    p.add_argument("--source-model", type=Path, required=True, help="transfer model to write")
    p.add_argument("--out", type=Path, required=True, help="zarr store of kept examples")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="transfer model training CSV")
    return p


def train_source(
    cfg: LanAttacksConfig, f1: ImageClassifier, images, index, base_seed: int, device
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """The transfer setting's second classifier, same data and normalisation as f1."""
    t = cfg.transfer
    data = SplitBatches(images, index.labels, index.split, t.batch_size, sample_chunk_size(images))
    rng = np.random.default_rng(base_seed + 1)
    model = build_classifier(
        t.arch, f1.num_classes, f1.mean.flatten().tolist(), f1.std.flatten().tolist()
    ).to(device)
    history = fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=t.epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=make_optimizer(model, **t.optimizer.model_dump()),
        device=device,
        generator=torch.Generator().manual_seed(base_seed + 1),
    )
    return model, history


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(LanAttacksConfig, args.params)
    if cfg.transfer.arch not in available_archs():
        raise ParamError(
            f"lan_attacks.transfer.arch: unknown model '{cfg.transfer.arch}'; use a torchvision "
            "classification model name (e.g. shufflenet_v2_x0_5) or tiny_resnet"
        )
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)
    f1 = load_classifier(args.model, device, num_classes=len(index.class_names))

    source, history = train_source(cfg, f1, images, index, base.seed, device)
    test_rows = np.flatnonzero(index.split == TEST)
    x_test = torch.as_tensor(np.asarray(images.get_orthogonal_selection((test_rows,))))
    y_test = torch.as_tensor(index.labels[test_rows])
    f1_correct = (predict(f1, x_test.to(device)).cpu() == y_test).numpy()
    src_correct = (predict(source, x_test.to(device)).cpu() == y_test).numpy()
    source_acc = float(src_correct.mean())
    log.info("transfer source %s: test accuracy %.3f", cfg.transfer.arch, source_acc)

    # Positions in test_rows: a class-stratified subset of f1's correct test images,
    # and the JSMA subset inside it (JSMA is the expensive attack).
    correct = np.flatnonzero(f1_correct)
    subset = correct[stratified_subset(index.labels[test_rows[correct]], cfg.max_images, base.seed)]
    jsma_subset = subset[
        stratified_subset(index.labels[test_rows[subset]], cfg.jsma_max_images, base.seed)
    ]
    models = {"direct": f1, "transfer": source}
    kept: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "images",
            "rows",
            "labels",
            "f1_pred",
            "source_pred",
            "setting",
            "l0",
            "pixels",
            "l2",
            "linf",
        )
    }
    names: list[str] = []
    stats: dict[str, dict[str, dict[str, float | int | None]]] = {s: {} for s in SETTINGS}
    for setting in SETTINGS:
        model = models[setting]
        base_pos = subset if setting == "direct" else subset[src_correct[subset]]
        for attack in ATTACKS:
            pos = base_pos if attack != "jsma" else base_pos[np.isin(base_pos, jsma_subset)]
            x, y = x_test[pos].to(device), y_test[pos].to(device)
            adv = craft(
                attack,
                model,
                x,
                y,
                batch_size=cfg.batch_size,
                fgsm_eps=cfg.fgsm.eps if setting == "direct" else cfg.transfer.fgsm_eps,
                jsma_theta=cfg.jsma.theta,
                jsma_gamma=cfg.jsma.gamma,
                jsma_candidates=cfg.jsma.candidates,
                cw_c=cfg.cw.c,
                cw_kappa=cfg.cw.kappa if setting == "direct" else cfg.transfer.cw_kappa,
                cw_steps=cfg.cw.steps,
                cw_lr=cfg.cw.lr,
            )
            src_pred = predict(model, adv).cpu().numpy()
            f1_pred = predict(f1, adv).cpu().numpy()
            y_np = y.cpu().numpy()
            keep = f1_pred != y_np
            adv_np, x_np = adv.cpu().numpy(), x.cpu().numpy()
            norms = perturbation_norms(x_np[keep], adv_np[keep])
            code = len(names)
            names.append(f"{setting}/{attack}")
            kept["images"].append(adv_np[keep])
            kept["rows"].append(test_rows[pos][keep])
            kept["labels"].append(y_np[keep])
            kept["f1_pred"].append(f1_pred[keep])
            kept["source_pred"].append(src_pred[keep])
            kept["setting"].append(np.full(int(keep.sum()), code, np.int64))
            for k, v in norms.items():
                kept[k].append(v)
            stats[setting][attack] = {
                "attacked": len(pos),
                "fooled_source": float((src_pred != y_np).mean()) if len(pos) else None,
                "kept": int(keep.sum()),
                "fooled_f1": float(keep.mean()) if len(pos) else None,
                **{f"mean_{k}": float(v.mean()) if len(v) else None for k, v in norms.items()},
            }
            log.info("%s/%s: %d of %d fool f1", setting, attack, int(keep.sum()), len(pos))

    provenance = {
        "dataset": str(args.dataset),
        "f1": str(args.model),
        "lan_attacks": cfg.model_dump(mode="json"),
        "seed": base.seed,
    }
    save_classifier(args.source_model, source, **provenance)
    arrays = {k: np.concatenate(v) for k, v in kept.items()}
    with atomic_output(args.out) as tmp:
        out = create_group(tmp, {"settings": names, "params": provenance})
        write_array(
            out,
            "images",
            arrays["images"].astype(np.float32),
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk,
            attrs={"range": [0.0, 1.0], "meaning": "adversarial images that fool f1"},
        )
        meanings = {
            "rows": "dataset row of the benign original",
            "labels": "true class",
            "f1_pred": "f1's class on the adversarial image (!= label)",
            "source_pred": "class of the attacked model (f1 for direct, the source for transfer)",
            "setting": "index into attrs['settings'] ('direct/fgsm', ...)",
            "l0": "changed components",
            "pixels": "changed pixels (any channel)",
            "l2": "L2 norm of the perturbation",
            "linf": "L-inf norm of the perturbation",
        }
        for k, meaning in meanings.items():
            dtype = np.float32 if k in ("l0", "pixels", "l2", "linf") else np.int64
            write_array(
                out,
                k,
                arrays[k].astype(dtype),
                dims=("sample",),
                chunk_size=chunk,
                attrs={"meaning": meaning},
            )
    with atomic_output(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(
        args.metrics,
        {
            "f1_test_accuracy": float(f1_correct.mean()),
            "source_arch": cfg.transfer.arch,
            "source_test_accuracy": source_acc,
            "source_val_accuracy": history[-1]["val_accuracy"],
            **stats,
        },
    )


if __name__ == "__main__":
    run(main, build)
