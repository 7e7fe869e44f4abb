"""The attribute chain's classifiers: file names, discovery order, checks before shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from advinterp.data.adversarial import ModelEntry
from advinterp.errors import CheckpointError, StoreError
from advinterp.models.chain_checkpoints import (
    chain_models,
    checked_checkpoints,
    checkpoint_of,
    robust_checkpoint,
)
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier


def _save(path: Path, **metadata) -> None:
    torch.manual_seed(0)
    save_classifier(path, build_classifier("tiny_resnet", 3, (0.5,) * 3, (0.25,) * 3), **metadata)


@pytest.fixture
def checkpoints(tmp_path) -> tuple[Path, Path]:
    standard, robust = tmp_path / "model.pt", tmp_path / "robust"
    robust.mkdir()
    _save(standard)
    for eps in (0.1, 0.02):  # written out of order, and names that sort differently
        _save(robust_checkpoint(robust, f"at_{eps:g}"), train_eps=eps)
    return standard, robust


def test_names():
    assert robust_checkpoint(Path("r"), "at_0.02") == Path("r/at_0.02.pt")
    assert checkpoint_of("standard", Path("m.pt"), Path("r")) == Path("m.pt")
    assert checkpoint_of("at_0.02", Path("m.pt"), Path("r")) == Path("r/at_0.02.pt")


def test_chain_models_standard_first_then_by_training_eps(checkpoints):
    standard, robust = checkpoints
    assert chain_models(standard, robust) == [
        ModelEntry("standard", None, str(standard)),
        ModelEntry("at_0.02", 0.02, str(robust / "at_0.02.pt")),
        ModelEntry("at_0.1", 0.1, str(robust / "at_0.1.pt")),
    ]


def test_chain_models_refuses_a_missing_directory_or_a_checkpoint_without_eps(checkpoints):
    standard, robust = checkpoints
    with pytest.raises(CheckpointError, match="run adv_train"):
        chain_models(standard, robust.parent / "absent")
    _save(robust / "at_0.5.pt")
    with pytest.raises(CheckpointError, match="at_0.5.pt: checkpoint has no train_eps"):
        chain_models(standard, robust)


def test_checked_checkpoints_sizes_and_bad_keys(checkpoints):
    standard, robust = checkpoints
    entries = chain_models(standard, robust)
    found = checked_checkpoints(entries, standard, robust, torch.device("cpu"), "attack.zarr")
    assert found["standard"] == (standard, 128, 3)
    assert found["at_0.1"] == (robust / "at_0.1.pt", 128, 3)
    bad = [ModelEntry("at_0.3", 0.02, "x.pt")]
    with pytest.raises(StoreError, match="attack.zarr: unexpected model key 'at_0.3'"):
        checked_checkpoints(bad, standard, robust, torch.device("cpu"), "attack.zarr")
    missing = [ModelEntry("at_0.3", 0.3, "x.pt")]
    with pytest.raises(CheckpointError, match="at_0.3.pt"):
        checked_checkpoints(missing, standard, robust, torch.device("cpu"), "attack.zarr")
