"""Stage ``pooling_study``: max vs average pooling under adversarial training
(Zheng et al. Sec. 5.2, Tables 2-3).

The robust pooling CNN of ``igan_train`` is one arm; this stage trains its twin with
the other pooling kind by the same call (same ``igan_train.classifier`` and
``igan_train.adversarial`` recipe, same seed: identical initial weights, batches and
PGD random starts; the pooling modules are the only difference). Both are scored on
the same class-stratified test images: clean, PGD with two step counts, momentum PGD
and FGSM, all at one L-inf eps.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.analysis.robustness import robust_accuracies
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.ifgsm import default_step_size
from advinterp.attacks.mifgsm import mifgsm
from advinterp.attacks.pgd import pgd
from advinterp.config.core import load
from advinterp.config.igan import IganTrainConfig, PoolingStudyConfig
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST, split_rows
from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import read_weights_file, save_classifier
from advinterp.models.pooling_cnn import (
    architecture_of,
    pooling_cnn_from_checkpoint,
)
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, sample_chunk_size, write_json
from stages.cli import parser, run, setup_base
from stages.igan_train import train_classifier

log = logging.getLogger("advinterp.stages.pooling_study")
OTHER = {"max": "avg", "avg": "max"}


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--models", type=Path, required=True, help="igan_train's output directory")
    p.add_argument("--twin", type=Path, required=True, help="checkpoint of the twin to write")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--table", type=Path, required=True, help="CSV: accuracy per attack")
    return p


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(PoolingStudyConfig, args.params)
    recipe = load(IganTrainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    chunk = sample_chunk_size(images)

    path = args.models / "robust.pt"
    obj = read_weights_file(path, device)
    robust = pooling_cnn_from_checkpoint(obj, str(path)).to(device)
    arch = architecture_of(robust)
    c = recipe.classifier
    expected = {
        "pooling": c.pooling,
        "widths": list(c.widths),
        "fc_width": c.fc_width,
        "input_size": c.input_size,
        "batch_norm": c.batch_norm,
    }
    if arch != expected:
        raise CheckpointError(
            f"{path}: architecture {arch} is not igan_train.classifier {expected}"
        )
    twin_kind = OTHER[arch["pooling"]]
    log.info("training the %s-pooling twin of %s", twin_kind, path)
    twin, history = train_classifier(
        recipe,
        twin_kind,
        {k: v for k, v in arch.items() if k != "pooling"},
        images,
        index,
        robust.mean.flatten().tolist(),
        robust.std.flatten().tolist(),
        robust=True,
        seed=base.seed,
        device=device,
    )
    save_classifier(
        args.twin,
        twin,
        architecture=architecture_of(twin),
        training="robust",
        twin_of=str(path),
        params=recipe.model_dump(mode="json"),
        seed=base.seed,
    )

    test_rows = split_rows(index, TEST, cfg.max_images, base.seed)
    x = torch.as_tensor(
        np.concatenate([b for _, b in iter_batches(images, test_rows, 256, chunk)]), device=device
    )
    y = torch.as_tensor(index.labels[test_rows], device=device)
    s1, s2 = cfg.pgd_steps

    def attacks() -> dict:
        def gen() -> torch.Generator:
            return torch.Generator().manual_seed(base.seed)

        return {
            f"pgd{s1}": partial(pgd, eps=cfg.eps, steps=s1, generator=gen()),
            f"pgd{s2}": partial(pgd, eps=cfg.eps, steps=s2, generator=gen()),
            # Momentum PGD: random start and PGD's step size, plus the velocity.
            f"mpgd{cfg.mpgd_steps}": partial(
                mifgsm,
                eps=cfg.eps,
                steps=cfg.mpgd_steps,
                step_size=default_step_size(cfg.eps, cfg.mpgd_steps),
                decay=cfg.mpgd_decay,
                random_start=True,
                generator=gen(),
            ),
            "fgsm": partial(fgsm, eps=cfg.eps),
        }

    results = {}
    for kind, model in ((arch["pooling"], robust), (twin_kind, twin)):
        results[kind] = robust_accuracies(model, x, y, attacks(), cfg.batch_size)
        log.info("%s pooling: %s", kind, {k: round(v, 3) for k, v in results[kind].items()})
    columns = list(results["max"])
    metrics = {
        "images": len(test_rows),
        "eps": cfg.eps,
        "max": results["max"],
        "avg": results["avg"],
        "avg_minus_max": {k: results["avg"][k] - results["max"][k] for k in columns},
        "twin_val_accuracy": history[-1]["val_accuracy"],
    }
    table = pd.DataFrame([{"pooling": k, **results[k]} for k in ("max", "avg")])
    with atomic_output(args.table) as tmp:
        table.to_csv(tmp, index=False)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main, build)
