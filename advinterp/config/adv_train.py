"""The ``adv_train`` section of params.yaml: fine-tune the classifier with Eq. 2 and PGD, one
model per eps.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import EpsList, OptimizerParams, Section


class AdvTrainConfig(Section):
    """``adv_train``: fine-tune the classifier with Eq. 2 and PGD, one model per eps."""

    section: ClassVar[str | None] = "adv_train"

    eps: EpsList = Field((0.02,), description="one robust model per training eps")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the clean loss in Eq. 2")
    steps: int = Field(3, ge=1, description="PGD steps per training batch")
    step_size: float | None = Field(None, gt=0.0, description="null = 2.5 eps / steps")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    augment: bool = True
    eval_steps: int = Field(10, ge=1, description="PGD steps of the robustness evaluation")
    eval_images: int | None = Field(200, ge=1, description="test images for the evaluation")
