"""Stage ``adv_train``: PGD adversarial training (Gulshad et al. Eq. 2), one model per eps.

Each model is fine-tuned from the standard classifier with
``α J(x, y) + (1 - α) J(x̂, y)``, x̂ recomputed for every batch by multi-step PGD at that
model's eps. Writes ``<out>/at_<eps>.pt`` per eps (see docs/artifacts.md), per-epoch
history and, as metrics, clean and PGD accuracy of every robust model beside the
standard model's under the same attack.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.attacks.pgd import pgd
from advinterp.config.attributes import AdvTrainConfig
from advinterp.config.core import load
from advinterp.data.adversarial import model_key
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import SplitBatches, iter_batches
from advinterp.data.dataset import TEST, split_rows
from advinterp.models.adversarial_training import adversarial_loss
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.classifier import ImageClassifier
from advinterp.models.training import accuracy, fit, make_optimizer
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.adv_train")
SHUFFLE_BUFFER = 8192


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="standard classifier to fine-tune")
    p.add_argument("--out", type=Path, required=True, help="directory of robust checkpoints")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--history", type=Path, required=True, help="per-epoch CSV")
    return p


def robust_accuracy(
    model: ImageClassifier,
    batches: list[tuple[np.ndarray, np.ndarray]],
    *,
    eps: float,
    steps: int,
    device: torch.device,
    seed: int,
) -> float:
    """Accuracy under PGD (random start, ``steps`` steps) at ``eps``, seeded."""
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    for x, y in batches:
        xt, yt = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
        x_adv = pgd(model, xt, yt, eps=eps, steps=steps, generator=generator)
        with torch.no_grad():
            correct += int((model(x_adv).argmax(1) == yt).sum())
        total += len(y)
    return correct / max(total, 1)


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(AdvTrainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)
    data = SplitBatches(images, index.labels, index.split, cfg.batch_size, chunk)
    test_rows = split_rows(index, TEST, cfg.eval_images, base.seed)
    eval_set = [
        (x, index.labels[idx]) for idx, x in iter_batches(images, test_rows, cfg.batch_size, chunk)
    ]

    num_classes = len(index.class_names)
    standard = load_classifier(args.model, device, num_classes=num_classes)
    clean_standard = accuracy(standard, eval_set, device)
    metrics: dict[str, dict[str, float]] = {}
    history: list[dict] = []
    with atomic_output(args.out) as tmp:
        tmp.mkdir()
        for k, eps in enumerate(cfg.eps):
            key = model_key(eps)
            log.info("%s: PGD-%d adversarial training at eps %g", key, cfg.steps, eps)
            rng = np.random.default_rng([base.seed, k])
            generator = torch.Generator().manual_seed(base.seed + 1000 * (k + 1))
            model = load_classifier(args.model, device, num_classes=num_classes)
            records = fit(
                model,
                lambda epoch, rng=rng: data.shuffled(rng, SHUFFLE_BUFFER),
                lambda: data.ordered(data.monitor),
                epochs=cfg.epochs,
                steps_per_epoch=data.steps_per_epoch,
                optimizer=make_optimizer(model, **cfg.optimizer.model_dump()),
                device=device,
                generator=generator,
                augment=cfg.augment,
                loss_fn=adversarial_loss(
                    eps=eps,
                    alpha=cfg.alpha,
                    steps=cfg.steps,
                    step_size=cfg.step_size,
                    generator=generator,
                ),
            )
            history += [{"model": key, "train_eps": eps, **r} for r in records]
            attack = {"eps": eps, "steps": cfg.eval_steps, "device": device, "seed": base.seed}
            metrics[key] = {
                "train_eps": eps,
                "clean_accuracy": accuracy(model, eval_set, device),
                "adv_accuracy": robust_accuracy(model, eval_set, **attack),
                "standard_clean_accuracy": clean_standard,
                "standard_adv_accuracy": robust_accuracy(standard, eval_set, **attack),
            }
            log.info(
                "%s: clean %.3f, PGD-%d %.3f (standard model: clean %.3f, PGD %.3f)",
                key,
                metrics[key]["clean_accuracy"],
                cfg.eval_steps,
                metrics[key]["adv_accuracy"],
                clean_standard,
                metrics[key]["standard_adv_accuracy"],
            )
            save_classifier(
                tmp / f"{key}.pt",
                model,
                train_eps=eps,
                params=cfg.model_dump(mode="json"),
                source=str(args.model),
                seed=base.seed,
            )
    with atomic_output(args.history) as tmp_csv:
        pd.DataFrame(history).to_csv(tmp_csv, index=False)
    write_json(args.metrics, {"eval_images": len(test_rows), **metrics})


if __name__ == "__main__":
    run(main, build)
