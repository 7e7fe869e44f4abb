"""The ``accuracy`` section of params.yaml: Figure 4, softmax vs SJE accuracy against eps."""

from __future__ import annotations

from typing import ClassVar

from advinterp.config.core import FigureParams, Section


class AccuracyConfig(Section):
    """``accuracy``: Figure 4, softmax vs SJE accuracy against eps."""

    section: ClassVar[str | None] = "accuracy"

    figure: FigureParams = FigureParams(dpi=120)
