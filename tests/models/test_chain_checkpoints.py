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


def test_chain_models_standard_first_then_the_listed_eps_increasing(checkpoints):
    standard, robust = checkpoints
    assert chain_models(standard, robust, [0.1, 0.02]) == [
        ModelEntry("standard", None, str(standard)),
        ModelEntry("at_0.02", 0.02, str(robust / "at_0.02.pt")),
        ModelEntry("at_0.1", 0.1, str(robust / "at_0.1.pt")),
    ]
    # A model of an eps no longer listed (its file left behind) takes no part.
    assert [m.key for m in chain_models(standard, robust, [0.1])] == ["standard", "at_0.1"]


def test_chain_models_refuses_a_missing_directory_model_or_train_eps(checkpoints):
    standard, robust = checkpoints
    with pytest.raises(CheckpointError, match="run adv_train"):
        chain_models(standard, robust.parent / "absent", [0.02])
    with pytest.raises(CheckpointError, match="at_0.3.pt: no robust model for adv_train eps 0.3"):
        chain_models(standard, robust, [0.02, 0.3])
    _save(robust / "at_0.5.pt")
    with pytest.raises(CheckpointError, match="at_0.5.pt: checkpoint has train_eps None"):
        chain_models(standard, robust, [0.5])
    _save(robust / "at_0.6.pt", train_eps=0.7)
    with pytest.raises(CheckpointError, match="at_0.6.pt: checkpoint has train_eps 0.7"):
        chain_models(standard, robust, [0.6])


def test_checked_checkpoints_sizes_and_bad_keys(checkpoints):
    standard, robust = checkpoints
    entries = chain_models(standard, robust, [0.02, 0.1])
    found = checked_checkpoints(entries, standard, robust, torch.device("cpu"), "attack.zarr")
    assert found["standard"] == (standard, 128, 3)
    assert found["at_0.1"] == (robust / "at_0.1.pt", 128, 3)
    bad = [ModelEntry("at_0.3", 0.02, "x.pt")]
    with pytest.raises(StoreError, match="attack.zarr: unexpected model key 'at_0.3'"):
        checked_checkpoints(bad, standard, robust, torch.device("cpu"), "attack.zarr")
    missing = [ModelEntry("at_0.3", 0.3, "x.pt")]
    with pytest.raises(CheckpointError, match="at_0.3.pt"):
        checked_checkpoints(missing, standard, robust, torch.device("cpu"), "attack.zarr")
