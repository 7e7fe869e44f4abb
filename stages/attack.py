"""Stage ``attack``: IFGSM (Gulshad et al. Eq. 1), untargeted and targeted, over an eps grid.

Attacks a class-stratified subset of the test split (``attack.max_images``) white-box
against the standard classifier and against every adversarially trained model (the
paper's "x̂ (AT)" examples), for every eps of ``attack.eps``. Targeted attacks are the
paper's "average case": one random target class != the true class per image, seeded,
shared by every model and eps. Work is streamed one output shard at a time, in this
process or fanned out on Dask (``scale`` params, :mod:`advinterp.shards`); a killed run
resumes from the shards it completed.

Store layout (``--out``, zarr v3; also in docs/artifacts.md)::

    attrs: models [{key, train_eps, checkpoint}], modes, eps, eps_keys, steps,
           step_size {eps_key: α}, dataset, params
    rows     (n,) int64   dataset row of each attacked image (ascending)
    labels   (n,) int64   true class
    targets  (n,) int64   target of the targeted attack (!= label)
    <model>/clean_pred                      (n,) int64   prediction on the clean image
    <model>/<mode>/<eps_key>/images         (n,3,H,W) float32 in [0,1], |x̂ - x|_inf <= eps
    <model>/<mode>/<eps_key>/pred           (n,) int64
    <model>/<mode>/<eps_key>/success        (n,) bool    untargeted: pred != label;
                                                          targeted: pred == target

``<model>`` is ``standard`` or ``at_<eps>``, ``<mode>`` ``untargeted``/``targeted``,
``<eps_key>`` ``eps_<eps>`` (names from :mod:`advinterp.data.adversarial`). Metrics:
success rate and accuracy per model, mode and eps.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from advinterp.attacks.ifgsm import default_step_size, ifgsm
from advinterp.config.attributes import AttackConfig
from advinterp.config.core import ScaleConfig, load
from advinterp.data.adversarial import MODES, ChainLayout, ModelEntry, eps_key, model_key
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST, stratified_subset
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import load_classifier, read_weights_file
from advinterp.models.classifier import ImageClassifier
from advinterp.runtime import resolve_device
from advinterp.store import (
    create_array,
    resumable_output,
    sample_chunk_size,
    write_array,
    write_json,
)
from stages.cli import parser, run, setup_base
from advinterp.shards import Compute, ShardJob, dask_session, run_shards, stage_fingerprint

log = logging.getLogger("advinterp.stages.attack")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="standard classifier")
    p.add_argument(
        "--robust", type=Path, required=True, help="directory of adversarially trained models"
    )
    p.add_argument("--out", type=Path, required=True, help="adversarial examples zarr store")
    p.add_argument("--metrics", type=Path, required=True)
    return p


def chain_models(standard: Path, robust_dir: Path) -> list[ModelEntry]:
    """The standard model and every ``at_*.pt`` in ``robust_dir``, by training eps."""
    entries = [ModelEntry(model_key(None), None, str(standard))]
    if not robust_dir.is_dir():
        raise CheckpointError(f"{robust_dir}: directory of robust models not found (run adv_train)")
    robust = []
    for path in sorted(robust_dir.glob("at_*.pt")):
        eps = read_weights_file(path).get("metadata", {}).get("train_eps")
        if eps is None:
            raise CheckpointError(f"{path}: checkpoint has no train_eps (not made by adv_train)")
        robust.append(ModelEntry(model_key(float(eps)), float(eps), str(path)))
    return entries + sorted(robust, key=lambda m: m.train_eps)


def random_targets(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """One target per image, uniform over the classes other than its label (seeded)."""
    rng = np.random.default_rng([seed, 3])
    shift = rng.integers(1, num_classes, size=len(labels))
    return ((labels + shift) % num_classes).astype(np.int64)


def attack_batches(
    model: ImageClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    eps: float,
    steps: int,
    step_size: float,
    batch_size: int,
) -> torch.Tensor:
    """IFGSM on ``x`` in batches of ``batch_size``; returns the adversarial images."""
    out = []
    for s in range(0, len(x), batch_size):
        sl = slice(s, s + batch_size)
        out.append(
            ifgsm(
                model,
                x[sl],
                y[sl],
                eps=eps,
                steps=steps,
                step_size=step_size,
                targets=None if targets is None else targets[sl],
            )
        )
    return torch.cat(out)


@torch.no_grad()
def predict(model: ImageClassifier, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)])


def attack_shard_setup(
    dataset: str,
    checkpoint: str,
    num_classes: int,
    rows: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    eps: tuple[float, ...],
    steps: int,
    alphas: dict[str, float],
    batch_size: int,
    device: str,
) -> Compute:
    """Shard setup for :func:`advinterp.shards.run_shards`: ``compute(slice)`` of one model."""
    dev = torch.device(device)
    model = load_classifier(checkpoint, dev, num_classes=num_classes)
    images = open_dataset(Path(dataset))["images"]
    ds_chunk = sample_chunk_size(images)

    def compute(sl: slice) -> dict[str, np.ndarray]:
        batches = iter_batches(images, rows[sl], len(rows[sl]), ds_chunk)
        x = torch.as_tensor(np.concatenate([b for _, b in batches]), device=dev)
        y = torch.as_tensor(labels[sl], device=dev)
        t = torch.as_tensor(targets[sl], device=dev)
        result = {"clean_pred": predict(model, x, batch_size).cpu().numpy()}
        for mode in MODES:
            for e in eps:
                x_adv = attack_batches(
                    model,
                    x,
                    y,
                    t if mode == "targeted" else None,
                    eps=e,
                    steps=steps,
                    step_size=alphas[eps_key(e)],
                    batch_size=batch_size,
                )
                # Checked, not assumed: the stored images honour the budget.
                excess = float((x_adv - x).abs().max()) - e
                if excess > 1e-6 or x_adv.min() < 0 or x_adv.max() > 1:
                    raise RuntimeError(f"bug: IFGSM left the eps={e} ball or [0, 1]")
                pred = predict(model, x_adv, batch_size)
                hit = pred == t if mode == "targeted" else pred != y
                rel = f"{mode}/{eps_key(e)}"
                result[f"{rel}/images"] = x_adv.cpu().numpy()
                result[f"{rel}/pred"] = pred.cpu().numpy()
                result[f"{rel}/success"] = hit.cpu().numpy()
        return result

    return compute


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(AttackConfig, args.params)
    scale = load(ScaleConfig, args.params)
    device = resolve_device(base.device)
    dataset = open_dataset(args.dataset)
    index = read_index(dataset)
    images = dataset["images"]
    chunk = base.chunk_size
    C = len(index.class_names)

    test_rows = np.flatnonzero(index.split == TEST)
    if cfg.max_images is not None:
        test_rows = test_rows[stratified_subset(index.labels[test_rows], cfg.max_images, base.seed)]
    rows = np.sort(test_rows)
    labels = index.labels[rows].astype(np.int64)
    targets = random_targets(labels, C, base.seed)
    n, S = len(rows), int(images.shape[-1])

    layout = ChainLayout(tuple(chain_models(args.model, args.robust)), MODES, cfg.eps)
    alphas = {eps_key(e): cfg.step_size or default_step_size(e, cfg.steps) for e in cfg.eps}
    log.info(
        "IFGSM-%d on %d test images, eps %s, models %s",
        cfg.steps,
        n,
        list(cfg.eps),
        layout.model_keys,
    )
    metrics: dict = {}
    fp = stage_fingerprint(
        [args.dataset, args.model, args.robust],
        {"base": base.model_dump(mode="json"), "attack": cfg.model_dump(mode="json")},
    )
    with dask_session(scale), resumable_output(args.out, fp) as part:
        group = part.group(
            {
                **layout.to_attrs(),
                "steps": cfg.steps,
                "step_size": alphas,
                "dataset": str(args.dataset),
                "params": {"attack": cfg.model_dump(mode="json"), "seed": base.seed},
            },
        )
        sample = ("sample",)
        write_array(group, "rows", rows.astype(np.int64), dims=sample, chunk_size=chunk)
        write_array(group, "labels", labels, dims=sample, chunk_size=chunk)
        write_array(group, "targets", targets, dims=sample, chunk_size=chunk)

        for entry in layout.models:
            load_classifier(entry.checkpoint, device, num_classes=C)  # a clear error first
            mgroup = group.require_group(entry.key)
            mgroup.attrs.update({"train_eps": entry.train_eps, "checkpoint": entry.checkpoint})
            outputs = {
                "clean_pred": create_array(
                    mgroup, "clean_pred", (n,), "int64", dims=sample, chunk_size=chunk
                )
            }
            for mode, e in ((mode, e) for mode in MODES for e in cfg.eps):
                rel = f"{mode}/{eps_key(e)}"
                sub = mgroup.require_group(rel)
                sub.attrs.update({"eps": e, "mode": mode, "step_size": alphas[eps_key(e)]})
                outputs[f"{rel}/images"] = create_array(
                    sub,
                    "images",
                    (n, 3, S, S),
                    "float32",
                    dims=("sample", "channel", "y", "x"),
                    chunk_size=chunk,
                    attrs={"range": [0.0, 1.0], "units": "RGB intensity", "linf_budget": e},
                )
                outputs[f"{rel}/pred"] = create_array(
                    sub, "pred", (n,), "int64", dims=sample, chunk_size=chunk
                )
                outputs[f"{rel}/success"] = create_array(
                    sub, "success", (n,), "bool", dims=sample, chunk_size=chunk
                )

            job = ShardJob.of(
                attack_shard_setup,
                str(args.dataset.resolve()),
                str(Path(entry.checkpoint).resolve()),
                C,
                rows,
                labels,
                targets,
                cfg.eps,
                cfg.steps,
                alphas,
                cfg.batch_size,
                str(device),
            )
            run_shards(
                outputs,
                job,
                n,
                chunk,
                scale=scale,
                markers=part.markers(entry.key),
                desc=f"attack {entry.key}",
            )
            metrics[entry.key] = {
                "clean_accuracy": float(np.mean(outputs["clean_pred"][:] == labels)),
                **{mode: {} for mode in MODES},
            }
            for mode in MODES:
                for e in cfg.eps:
                    rel = f"{mode}/{eps_key(e)}"
                    metrics[entry.key][mode][eps_key(e)] = {
                        "success_rate": float(np.mean(outputs[f"{rel}/success"][:])),
                        "accuracy": float(np.mean(outputs[f"{rel}/pred"][:] == labels)),
                    }
            log.info("%s: %s", entry.key, metrics[entry.key])
    write_json(args.metrics, {"images": n, **metrics})


if __name__ == "__main__":
    run(main, build)
