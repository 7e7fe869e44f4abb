"""The adversarial examples of Nguyen et al. Sec. 3: direct and transfer settings.

Direct setting (their Table 2): FGSM, JSMA and C&W crafted against f1. Transfer setting
(Table 3): crafted against a second architecture trained here on the same data, then
given to f1. Both start from a class-stratified subset of the test images f1 classifies
correctly (JSMA, the expensive attack, on a stratified subset of that); only examples
that fool f1 (f1(x*) != true class) are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advinterp.attacks.suite import Setting, craft, lan_suite, perturbation_norms
from advinterp.config.lan_attacks import LanAttacksConfig, TransferParams
from advinterp.data.dataset import TEST, AttributeIndex, stratified_subset
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.models.predict import predict
from advinterp.models.training import fit_on_split
from advinterp.store import atomic_output, create_group, write_array

log = logging.getLogger(__name__)

SETTINGS: tuple[Setting, ...] = ("direct", "transfer")
PREDICT_BATCH = 256
# Per-example arrays of the store besides the images: name -> meaning.
MEANINGS = {
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
NORMS = ("l0", "pixels", "l2", "linf")


@dataclass
class LanExamples:
    """What :func:`lan_examples` returns.

    Attributes:
        source: the transfer setting's trained source model.
        history: its per-epoch training record.
        settings: ``"<setting>/<attack>"`` per code of ``arrays["setting"]``.
        arrays: the kept examples: ``images`` (M, C, H, W) float32 in [0, 1] and, per
            example, the (M,) arrays named in :data:`MEANINGS`.
        metrics: f1's and the source's test accuracy, per setting and attack the
            number attacked/kept, the fooling rates and the mean perturbation norms.
    """

    source: ImageClassifier
    history: list[dict[str, float]]
    settings: list[str]
    arrays: dict[str, np.ndarray]
    metrics: dict[str, Any]


def train_transfer_source(
    f1: ImageClassifier,
    images: Any,
    index: AttributeIndex,
    params: TransferParams,
    *,
    seed: int,
    device: torch.device,
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """The transfer setting's second classifier: same data and normalisation as f1.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1], one per dataset row (a zarr array).
    """
    model = build_classifier(
        params.arch, f1.num_classes, f1.mean.flatten().tolist(), f1.std.flatten().tolist()
    ).to(device)
    _, history = fit_on_split(
        model, images, index.labels, index.split, params, device=device, seed=seed
    )
    return model, history


def lan_examples(
    f1: ImageClassifier,
    images: Any,
    index: AttributeIndex,
    cfg: LanAttacksConfig,
    *,
    seed: int,
    device: torch.device,
) -> LanExamples:
    """Train the transfer source, attack f1 and it, keep the examples that fool f1.

    ``seed`` drives the test subsets; the source model trains with ``seed + 1``.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1], one per dataset row (a zarr array).
    """
    source, history = train_transfer_source(
        f1, images, index, cfg.transfer, seed=seed + 1, device=device
    )
    test_rows = np.flatnonzero(index.split == TEST)
    x_test = torch.as_tensor(np.asarray(images.get_orthogonal_selection((test_rows,))))
    y_test = torch.as_tensor(index.labels[test_rows])
    f1_correct = (predict(f1, x_test, PREDICT_BATCH, device) == y_test).numpy()
    src_correct = (predict(source, x_test, PREDICT_BATCH, device) == y_test).numpy()
    source_acc = float(src_correct.mean())
    log.info("transfer source %s: test accuracy %.3f", cfg.transfer.arch, source_acc)

    # Positions in test_rows: a class-stratified subset of f1's correct test images,
    # and the JSMA subset inside it (JSMA is the expensive attack).
    correct = np.flatnonzero(f1_correct)
    subset = correct[stratified_subset(index.labels[test_rows[correct]], cfg.max_images, seed)]
    jsma_subset = subset[
        stratified_subset(index.labels[test_rows[subset]], cfg.jsma_max_images, seed)
    ]
    models = {"direct": f1, "transfer": source}
    kept: dict[str, list[np.ndarray]] = {k: [] for k in ("images", *MEANINGS)}
    names: list[str] = []
    stats: dict[str, dict[str, dict[str, float | int | None]]] = {s: {} for s in SETTINGS}
    for setting in SETTINGS:
        model = models[setting]
        base_pos = subset if setting == "direct" else subset[src_correct[subset]]
        for attack in lan_suite(cfg, setting):
            pos = base_pos if attack.name != "jsma" else base_pos[np.isin(base_pos, jsma_subset)]
            x, y = x_test[pos].to(device), y_test[pos].to(device)
            adv = craft(attack, model, x, y, cfg.batch_size)
            src_pred = predict(model, adv, PREDICT_BATCH).numpy()
            f1_pred = predict(f1, adv, PREDICT_BATCH).numpy()
            y_np = y.cpu().numpy()
            keep = f1_pred != y_np
            adv_np, x_np = adv.cpu().numpy(), x.cpu().numpy()
            norms = perturbation_norms(x_np[keep], adv_np[keep])
            code = len(names)
            names.append(f"{setting}/{attack.name}")
            kept["images"].append(adv_np[keep])
            kept["rows"].append(test_rows[pos][keep])
            kept["labels"].append(y_np[keep])
            kept["f1_pred"].append(f1_pred[keep])
            kept["source_pred"].append(src_pred[keep])
            kept["setting"].append(np.full(int(keep.sum()), code, np.int64))
            for k, v in norms.items():
                kept[k].append(v)
            stats[setting][attack.name] = {
                "attacked": len(pos),
                "fooled_source": float((src_pred != y_np).mean()) if len(pos) else None,
                "kept": int(keep.sum()),
                "fooled_f1": float(keep.mean()) if len(pos) else None,
                **{f"mean_{k}": float(v.mean()) if len(v) else None for k, v in norms.items()},
            }
            log.info("%s/%s: %d of %d fool f1", setting, attack.name, int(keep.sum()), len(pos))
    metrics = {
        "f1_test_accuracy": float(f1_correct.mean()),
        "source_arch": cfg.transfer.arch,
        "source_test_accuracy": source_acc,
        "source_val_accuracy": history[-1]["val_accuracy"],
        **stats,
    }
    arrays = {k: np.concatenate(v) for k, v in kept.items()}
    return LanExamples(source, history, names, arrays, metrics)


def write_lan_examples(
    path: Path | str, examples: LanExamples, provenance: dict[str, Any], chunk_size: int
) -> None:
    """The ``lan_attacks`` store: images, per-example arrays, ``settings`` and provenance."""
    arrays = examples.arrays
    with atomic_output(path) as tmp:
        out = create_group(tmp, {"settings": examples.settings, "params": provenance})
        write_array(
            out,
            "images",
            arrays["images"].astype(np.float32),
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk_size,
            attrs={"range": [0.0, 1.0], "meaning": "adversarial images that fool f1"},
        )
        for k, meaning in MEANINGS.items():
            dtype = np.float32 if k in NORMS else np.int64
            write_array(
                out,
                k,
                arrays[k].astype(dtype),
                dims=("sample",),
                chunk_size=chunk_size,
                attrs={"meaning": meaning},
            )
