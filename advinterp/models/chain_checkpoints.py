"""Where the attribute chain's classifiers live (Gulshad et al. Sec. 4: f and f (AT)).

The standard classifier is one checkpoint; stage ``adv_train`` writes one robust model
per training eps into a directory, as ``<dir>/at_<eps>.pt`` (the key of
:func:`advinterp.data.adversarial.model_key`) carrying ``train_eps`` in its metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from advinterp.data.adversarial import STANDARD, ModelEntry, model_key
from advinterp.errors import CheckpointError, StoreError
from advinterp.models.checkpoint import load_classifier, read_weights_file


def robust_checkpoint(robust_dir: Path, key: str) -> Path:
    """The file of the robust model ``key`` (``at_<eps>``) in ``robust_dir``."""
    return robust_dir / f"{key}.pt"


def checkpoint_of(key: str, standard: Path, robust_dir: Path) -> Path:
    """The checkpoint of model ``key``: ``standard`` itself, or a robust model's file."""
    return standard if key == STANDARD else robust_checkpoint(robust_dir, key)


def chain_models(standard: Path, robust_dir: Path) -> list[ModelEntry]:
    """The standard model, then every ``at_*.pt`` of ``robust_dir`` by increasing train eps.

    Raises:
        CheckpointError: ``robust_dir`` is missing, or a checkpoint has no ``train_eps``.
    """
    entries = [ModelEntry(model_key(None), None, str(standard))]
    if not robust_dir.is_dir():
        raise CheckpointError(f"{robust_dir}: directory of robust models not found (run adv_train)")
    robust: list[tuple[float, ModelEntry]] = []
    for path in sorted(robust_dir.glob("at_*.pt")):
        eps = read_weights_file(path).get("metadata", {}).get("train_eps")
        if eps is None:
            raise CheckpointError(f"{path}: checkpoint has no train_eps (not made by adv_train)")
        robust.append((float(eps), ModelEntry(model_key(float(eps)), float(eps), str(path))))
    return entries + [m for _, m in sorted(robust, key=lambda r: r[0])]


def checked_checkpoints(
    models: Sequence[ModelEntry],
    standard: Path,
    robust_dir: Path,
    device: torch.device,
    origin: str,
) -> dict[str, tuple[Path, int, int]]:
    """Load every model of a chain store once: key -> (checkpoint, feature dim D, classes C).

    Run before any shard: a bad robust model is one clear error here, not a worker's
    failure after the other models' shards. Only the sizes are kept.

    Raises:
        StoreError: ``origin`` (the store listing ``models``) names an unexpected key.
        CheckpointError: a checkpoint is missing or unreadable.
    """
    found = {}
    for entry in models:
        if entry.key != model_key(entry.train_eps):
            raise StoreError(f"{origin}: unexpected model key {entry.key!r}")
        path = checkpoint_of(entry.key, standard, robust_dir)
        model = load_classifier(path, device)
        found[entry.key] = (path, model.feature_dim, model.num_classes)
    return found
