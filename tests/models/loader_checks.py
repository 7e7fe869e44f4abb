"""The round trip and refusals every checkpoint loader owes, checked in one place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from advinterp.errors import CheckpointError

CPU = torch.device("cpu")


def check_loader(
    load: Callable[[Path, torch.device], torch.nn.Module],
    model: torch.nn.Module,
    state: dict,
    input_shape: tuple[int, ...],
    tmp_path: Path,
    *,
    foreign_format: str,
    kind: str,
) -> None:
    """``load`` returns ``model`` from its saved ``state`` in eval mode, equal on a random
    (2, *input_shape) batch; it refuses another format's checkpoint (``foreign_format``)
    naming the file and that it is not a ``kind`` checkpoint, and a missing file.
    """
    torch.save(state, tmp_path / "saved.pt")
    back = load(tmp_path / "saved.pt", CPU)
    x = torch.rand(2, *input_shape)
    assert not back.training and torch.equal(model(x), back(x))
    torch.save({"format": foreign_format}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=f"foreign.pt: not a {kind} checkpoint"):
        load(tmp_path / "foreign.pt", CPU)
    with pytest.raises(CheckpointError, match="not found"):
        load(tmp_path / "missing.pt", CPU)
