"""Stage ``localized_attack``: targeted BIM confined to Felzenszwalb regions (Göpfert et al.).

Chooses correctly classified test images (not of the target class), segments each,
attacks up to ``max_regions`` of its largest regions one at a time towards the one
target class, keeps the successful attempts and counts the failed and stalled ones.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.attacks.localized import (
    FAILED,
    OUTCOMES,
    STALLED,
    SUCCESS,
    largest_regions,
    localized_bim,
    segment_regions,
)
from advinterp.config.core import load
from advinterp.config.localized import LocalizedAttackConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST
from advinterp.errors import ParamError
from advinterp.models.checkpoint import load_classifier
from advinterp.progress import track
from advinterp.runtime import resolve_device
from advinterp.store import (
    atomic_output,
    create_group,
    sample_chunk_size,
    write_array,
    write_json,
)
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.localized_attack")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="zarr store of successful attacks")
    p.add_argument("--metrics", type=Path, required=True, help="success statistics (JSON)")
    p.add_argument("--attempts", type=Path, required=True, help="one CSV row per attempt")
    return p


def choose_images(
    labels: np.ndarray, pred: np.ndarray, rows: np.ndarray, target: int, n: int, seed: int
) -> np.ndarray:
    """Up to ``n`` test rows neither labelled nor predicted as the target (sorted).

    Correctly classified images are taken first, in seeded random order; misclassified
    ones fill up only when too few are correct (a weak model).
    """
    lab = labels[rows]
    usable = (lab != target) & (pred != target)
    rng = np.random.default_rng([seed, 5])
    right = rng.permutation(rows[usable & (pred == lab)])
    wrong = rng.permutation(rows[usable & (pred != lab)])
    return np.sort(np.concatenate([right, wrong])[:n])


@torch.no_grad()
def predict(model, images, rows: np.ndarray, batch: int, device: torch.device) -> np.ndarray:
    """Predictions for ``images[rows]`` (sorted rows), streamed shard by shard."""
    out = [
        model(torch.as_tensor(x, device=device)).argmax(1).cpu()
        for _, x in iter_batches(images, rows, batch, sample_chunk_size(images))
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(LocalizedAttackConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    if cfg.target >= len(index.class_names):
        raise ParamError(
            f"{args.params}: localized_attack.target={cfg.target} is not a class index "
            f"(the dataset has {len(index.class_names)} classes)"
        )
    model = load_classifier(args.model, device, num_classes=len(index.class_names))
    test_rows = np.flatnonzero(index.split == TEST)
    pred = predict(model, group["images"], test_rows, cfg.batch_size, device)
    chosen = choose_images(index.labels, pred, test_rows, cfg.target, cfg.num_images, base.seed)
    if len(chosen) == 0:
        raise ParamError(
            f"{args.params}: every test image is labelled or predicted as class "
            f"localized_attack.target={cfg.target}: nothing to attack"
        )
    images = np.asarray(group["images"].get_orthogonal_selection((chosen,)), np.float32)

    seg_cfg = cfg.segmentation
    segments, attempts = [], []  # attempts: (image index, region rank, mask)
    for i, img in enumerate(images):
        seg = segment_regions(img, seg_cfg.scale, seg_cfg.sigma, seg_cfg.min_size)
        segments.append(seg)
        for rank, mask in enumerate(largest_regions(seg, cfg.max_regions, cfg.max_region_fraction)):
            attempts.append((i, rank, mask))
    log.info("%d images, %d attempts towards class %d", len(chosen), len(attempts), cfg.target)

    n = len(attempts)
    adv = np.zeros((n, *images.shape[1:]), np.float32)
    outcome, steps = np.zeros(n, np.int64), np.zeros(n, np.int64)
    prob, adv_pred = np.zeros(n, np.float32), np.zeros(n, np.int64)
    batches = range(0, n, cfg.batch_size)
    for s in track(batches, total=len(batches), desc="localized BIM", unit="batch"):
        part = attempts[s : s + cfg.batch_size]
        x = torch.as_tensor(images[[a[0] for a in part]], device=device)
        masks = torch.as_tensor(np.stack([a[2] for a in part]), device=device)
        targets = torch.full((len(part),), cfg.target, dtype=torch.int64)
        res = localized_bim(
            model,
            x,
            masks,
            targets,
            eps=cfg.eps,
            step_size=cfg.step_size,
            max_steps=cfg.max_steps,
            patience=cfg.patience,
            min_improvement=cfg.min_improvement,
            confidence=cfg.confidence,
        )
        sl = slice(s, s + len(part))
        adv[sl] = res.adversarial.cpu().numpy()
        outcome[sl], steps[sl] = res.outcome.numpy(), res.steps.numpy()
        prob[sl], adv_pred[sl] = res.target_prob.numpy(), res.pred.numpy()

    src = np.array([a[0] for a in attempts], np.int64)
    rank = np.array([a[1] for a in attempts], np.int64)
    region = np.stack([a[2] for a in attempts]) if n else np.zeros((0, *images.shape[2:]), bool)
    pixels = region.reshape(n, -1).sum(1)
    linf = np.abs(adv - images[src]).reshape(n, -1).max(1) if n else np.zeros(0, np.float32)
    keep = np.flatnonzero(outcome == SUCCESS)
    total = images.shape[2] * images.shape[3]

    table = pd.DataFrame(
        {
            "row": chosen[src],
            "region_rank": rank,
            "region_pixels": pixels,
            "outcome": [OUTCOMES[int(o)] for o in outcome],
            "steps": steps,
            "target_prob": prob,
            "pred": adv_pred,
        }
    )
    metrics = {
        "images": len(chosen),
        "attempts": n,
        "successes": len(keep),
        "failed": int((outcome == FAILED).sum()),
        "stalled": int((outcome == STALLED).sum()),
        "success_rate": len(keep) / n if n else 0.0,
        "mean_steps": float(steps[keep].mean()) if len(keep) else None,
        "mean_region_fraction": float(pixels[keep].mean() / total) if len(keep) else None,
        "mean_linf": float(linf[keep].mean()) if len(keep) else None,
        "mean_target_prob": float(prob[keep].mean()) if len(keep) else None,
        "target": cfg.target,
    }
    log.info(
        "%d/%d attacks reached class %d (%d failed, %d stalled)",
        len(keep),
        n,
        cfg.target,
        metrics["failed"],
        metrics["stalled"],
    )

    chunk = base.chunk_size
    provenance = {
        "dataset": str(args.dataset),
        "model": str(args.model),
        "localized_attack": cfg.model_dump(mode="json"),
        "seed": base.seed,
    }
    with atomic_output(args.out) as tmp:
        out = create_group(
            tmp,
            {
                "params": provenance,
                "target": cfg.target,
                "target_name": index.class_names[cfg.target],
                "class_names": index.class_names,
            },
        )
        write_array(
            out,
            "images",
            adv[keep],
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk,
            attrs={"range": [0.0, 1.0], "meaning": "localized adversarial examples x'"},
        )
        write_array(
            out,
            "region",
            region[keep].astype(np.uint8),
            dims=("sample", "y", "x"),
            chunk_size=chunk,
            attrs={"meaning": "attack region C: 1 where x' may differ from x"},
        )
        per_sample = {
            "rows": (chosen[src[keep]], "dataset row of the attacked clean image"),
            "labels": (index.labels[chosen[src[keep]]], "true class"),
            "source": (src[keep], "index into source_rows / segments"),
            "region_rank": (rank[keep], "0 = largest region of its image"),
            "region_pixels": (pixels[keep], "|C|"),
            "steps": (steps[keep], "BIM steps to reach the target"),
            "target_prob": (prob[keep], "softmax probability of the target on x'"),
            "pred": (adv_pred[keep], "prediction on x' (= target)"),
            "linf": (linf[keep].astype(np.float32), "|x' - x|_inf"),
        }
        for name, (values, meaning) in per_sample.items():
            write_array(
                out, name, values, dims=("sample",), chunk_size=chunk, attrs={"meaning": meaning}
            )
        write_array(
            out,
            "source_rows",
            chosen,
            dims=("image",),
            chunk_size=chunk,
            attrs={"meaning": "dataset rows of the attacked images"},
        )
        write_array(
            out,
            "segments",
            np.stack(segments).astype(np.int32),
            dims=("image", "y", "x"),
            chunk_size=chunk,
            attrs={"meaning": "Felzenszwalb segmentation of each image"},
        )
    with atomic_output(args.attempts) as tmp:
        table.to_csv(tmp, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
