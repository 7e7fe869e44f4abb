"""The ``mask_classifier`` section of params.yaml: f2, a LeNet-style CNN on training-set masks
(Nguyen et al.).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import OptimizerParams, Section


class MaskClassifierConfig(Section):
    """``mask_classifier``: f2, a LeNet-style CNN on training-set masks (Nguyen et al.)."""

    section: ClassVar[str | None] = "mask_classifier"

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="adam", lr=2e-3, momentum=0.9, weight_decay=1e-4
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
