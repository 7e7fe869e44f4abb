"""Where the attribute chain's classifiers live (Gulshad et al. Sec. 4: f and f (AT)).

The standard classifier is one checkpoint; stage ``adv_train`` writes one robust model
per training eps (one run each) into a directory, as ``<dir>/at_<eps>.pt`` (the key of
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


def chain_models(standard: Path, robust_dir: Path, train_eps: Sequence[float]) -> list[ModelEntry]:
    """The standard model, then the robust model of each of ``train_eps`` (increasing).

    Only the listed models: the directory may still hold a model of an eps since removed
    from ``adv_train.eps`` (DVC leaves a removed run's file in place).

    Raises:
        CheckpointError: ``robust_dir`` is missing, a listed model is not in it, or its
            checkpoint has another (or no) ``train_eps``.
    """
    entries = [ModelEntry(model_key(None), None, str(standard))]
    if not robust_dir.is_dir():
        raise CheckpointError(f"{robust_dir}: directory of robust models not found (run adv_train)")
    for eps in sorted(float(e) for e in train_eps):
        path = robust_checkpoint(robust_dir, model_key(eps))
        if not path.is_file():
            raise CheckpointError(
                f"{path}: no robust model for adv_train eps {eps:g} (run adv_train)"
            )
        found = read_weights_file(path).get("metadata", {}).get("train_eps")
        if found is None or float(found) != eps:
            raise CheckpointError(
                f"{path}: checkpoint has train_eps {found} (expected {eps:g}; not made by adv_train)"
            )
        entries.append(ModelEntry(model_key(eps), eps, str(path)))
    return entries


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
